/**
 * Inbound budgets: how many messages and bytes per second a connection may send us, as two token
 * buckets (a burst is allowed up to the bucket's size). The hot path only spends tokens; the
 * shared liveness clock (./heartbeat.ts) refills them on its tick, so no timer and no Date.now()
 * per message.
 */

export interface BudgetOptions {
  /** inbound messages per second; 0 = no limit */
  messagesPerSecond: number
  /** inbound payload bytes per second; 0 = no limit */
  bytesPerSecond: number
  /** bucket size in seconds of rate (a burst of `burst` x the rate passes at once); default 1 */
  burst: number
  /** over budget: 'close' with 1008 (default) or 'drop' the message and emit 'budgetExceeded' */
  policy: 'close' | 'drop'
}

export type BudgetKind = 'messages' | 'bytes'

/** The two buckets of one connection, created only on routes that set a budget. */
export class InboundBudget {
  readonly options: BudgetOptions
  private messages: number
  private bytes: number
  private refilledAt: number

  constructor (options: BudgetOptions, now: number) {
    this.options = options
    this.messages = options.messagesPerSecond * options.burst
    this.bytes = options.bytesPerSecond * options.burst
    this.refilledAt = now
  }

  /** Take one message of `size` bytes; the kind of bucket that ran dry, or undefined when paid. */
  spend (size: number): BudgetKind | undefined {
    const o = this.options
    if (o.messagesPerSecond > 0) {
      if (this.messages < 1) return 'messages'
    }
    if (o.bytesPerSecond > 0) {
      if (this.bytes < size) return 'bytes'
      this.bytes -= size
    }
    if (o.messagesPerSecond > 0) this.messages -= 1
    return undefined
  }

  /** The clock's tick: tokens for the time since the last one, up to the bucket's size. */
  refill (now: number): void {
    const seconds = (now - this.refilledAt) / 1000
    this.refilledAt = now
    const o = this.options
    if (o.messagesPerSecond > 0) this.messages = Math.min(o.messagesPerSecond * o.burst, this.messages + o.messagesPerSecond * seconds)
    if (o.bytesPerSecond > 0) this.bytes = Math.min(o.bytesPerSecond * o.burst, this.bytes + o.bytesPerSecond * seconds)
  }
}

export function hasBudget (o: BudgetOptions): boolean {
  return o.messagesPerSecond > 0 || o.bytesPerSecond > 0
}
