/**
 * The settings of a connection, resolved from its options once. A route resolves them once for
 * all its connections and hands the same object to each (memory: one pointer per connection
 * instead of a dozen fields); `new WebSocket(socket, options)` resolves its own.
 */
import { Defaults } from '../protocol/constants.js'
import type { ProtocolOptions } from '../protocol/protocol.js'
import type { LivenessOptions } from './heartbeat.js'
import { messagePool } from './message-pool.js'
import { type BufferedAmountPolicy, defaultMaxBufferedAmount, defaultMaxQueuedBytes, LimitDefaults, resolveMaxPayload } from './limits.js'
import type { TopicHub } from '../topics/hub.js'
import type { BudgetOptions } from './budget.js'
import type { ConnectionMeter } from './meter.js'
import type { WebSocketOptions } from './types.js'

/** Listener-like hooks are called with `this` set to the connection's WebSocket. */
export interface ConnectionSettings {
  readonly role: 'server' | 'client'
  readonly maxPayload: number
  readonly maxFragments: number
  readonly closeTimeout: number
  readonly sharedReadBuffer: boolean
  /** large binary messages are lent (./message-pool.ts): set only where they can be (no `inbound`) */
  readonly lentMessages: boolean
  readonly maxQueuedMessages: number
  readonly maxQueuedBytes: number
  readonly maxBufferedAmount: number
  readonly bufferedAmountPolicy: BufferedAmountPolicy
  readonly liveness: LivenessOptions
  /** inbound budget, or null */
  readonly budget: BudgetOptions | null
  readonly meter: ConnectionMeter | undefined
  /** the core's options, without and with permessage-deflate (RSV1 allowed) */
  readonly core: Required<ProtocolOptions>
  readonly coreWithDeflate: Required<ProtocolOptions>
  readonly onListenerError: ((error: unknown) => void) | undefined
  readonly inbound: ((data: Buffer, binary: boolean) => unknown) | undefined
  readonly serialize: (value: unknown) => string
  /** called once when the connection closed, before the 'close' listeners (the plugin's bookkeeping) */
  readonly onClose: ((code: number, reason: string, wasClean: boolean) => void) | undefined
  /** the topic hub socket.subscribe() and socket.publish() use */
  readonly topics: TopicHub | undefined
}

/** Internal option keys: settings resolved ahead of time, and the plugin's per-connection data. */
export const kSettings: unique symbol = Symbol('fastify-rfc6455.settings')
export const kContext: unique symbol = Symbol('fastify-rfc6455.context')

export interface InternalOptions extends WebSocketOptions {
  [kSettings]?: ConnectionSettings
  [kContext]?: unknown
}

export function resolveSettings (
  options: WebSocketOptions,
  onClose?: ConnectionSettings['onClose']
): ConnectionSettings {
  const { limit: maxPayload, derivedFrom } = resolveMaxPayload(options.maxPayload ?? Defaults.maxPayload)
  const role = options.role ?? 'server'
  const maxFragments = options.maxFragments ?? Defaults.maxFragments
  // an `inbound` hook (message schemas) may keep what it is given: its messages are never lent;
  // with permessage-deflate neither (inflated messages are zlib's; uncompressed ones may wait
  // behind an inflating one)
  const lentMessages = options.lentMessages === true && options.inbound === undefined
  return {
    role,
    maxPayload,
    maxFragments,
    core: { role, maxPayload, maxFragments, allowRsv1: false, memory: lentMessages ? messagePool : null },
    coreWithDeflate: { role, maxPayload, maxFragments, allowRsv1: true, memory: null },
    closeTimeout: options.closeTimeout ?? Defaults.closeTimeout,
    sharedReadBuffer: options.sharedReadBuffer ?? true,
    lentMessages,
    maxQueuedMessages: options.maxQueuedMessages ?? LimitDefaults.maxQueuedMessages,
    maxQueuedBytes: options.maxQueuedBytes ?? defaultMaxQueuedBytes(derivedFrom),
    maxBufferedAmount: options.maxBufferedAmount ?? defaultMaxBufferedAmount(derivedFrom),
    bufferedAmountPolicy: options.bufferedAmountPolicy ?? LimitDefaults.bufferedAmountPolicy,
    liveness: {
      heartbeatInterval: options.heartbeatInterval ?? LimitDefaults.heartbeatInterval,
      idleTimeout: options.idleTimeout ?? LimitDefaults.idleTimeout,
      maxLifetime: options.maxLifetime ?? LimitDefaults.maxLifetime,
      incompleteMessageTimeout: options.incompleteMessageTimeout ?? LimitDefaults.incompleteMessageTimeout
    },
    budget: options.budget ?? null,
    meter: options.meter,
    onListenerError: options.onListenerError,
    inbound: options.inbound,
    serialize: options.serialize ?? JSON.stringify,
    onClose,
    topics: options.topics
  }
}
