/**
 * What a connection reports about its messages to whoever counts them (the plugin's metrics and
 * diagnostics channels). Called on the hot path: an implementation only adds to counters and
 * publishes when a channel has subscribers.
 */
import type { BudgetKind } from './budget.js'

/** what was over its limit: the send buffer (maxBufferedAmount) or an inbound budget */
export type LimitReason = 'buffer' | BudgetKind

export interface ConnectionMeter {
  /** an inbound data message: `size` bytes after inflation, `wireSize` as received (compressed or not) */
  received (socket: object, size: number, wireSize: number, binary: boolean, compressed: boolean): void
  /** an outbound data message was queued: `size` in bytes, or UTF-16 units for text given as a string */
  sent (socket: object, size: number, binary: boolean): void
  /** a message met a limit's policy: outbound over maxBufferedAmount ('buffer') or inbound over budget */
  overLimit (socket: object, size: number, reason: LimitReason, action: 'drop' | 'close'): void
}
