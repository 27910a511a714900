import type { BudgetOptions } from './budget.js'
import type { ConnectionMeter } from './meter.js'
/** The public types of the WebSocket connection: its options, events and callbacks. */
import type { DeflateParams } from '../protocol/permessage-deflate.js'
import type { TopicHub } from '../topics/hub.js'
import type { BufferedAmountPolicy } from './limits.js'

export interface WebSocketOptions {
  role?: 'server' | 'client'
  maxPayload?: number
  maxFragments?: number
  /** ms to wait for the peer's Close frame / TCP close after we close; then the socket is destroyed */
  closeTimeout?: number
  /** read a plain TCP socket into one buffer shared by all sockets, copying messages out; default true */
  sharedReadBuffer?: boolean
  /**
   * Binary messages of 16 KiB or more are handed to 'message' listeners as views of reused
   * memory, valid only until the listener returns (or its promise settles); default false
   */
  lentMessages?: boolean
  /** negotiated subprotocol ('' when none) */
  protocol?: string
  /** queued inbound messages (nobody consuming yet) before reading pauses */
  maxQueuedMessages?: number
  /** queued inbound bytes before reading pauses */
  maxQueuedBytes?: number
  /** called when a listener throws; the socket is closed with 1011 afterwards */
  onListenerError?: (error: unknown) => void
  // ---- flow control and liveness (defaults and rationale in ./limits.ts) ----
  /** outbound bytes (bufferedAmount) one connection may hold; default max(4 MiB, 4 x maxPayload) */
  maxBufferedAmount?: number
  /** over maxBufferedAmount: 'close' (1008, default) or 'drop' the message and report it */
  bufferedAmountPolicy?: BufferedAmountPolicy
  /** ms of peer silence before a Ping; terminated when silent as long again. 0 = off; default 30000 */
  heartbeatInterval?: number
  /** ms without a data message either way before closing with 1001. 0 = off (default) */
  idleTimeout?: number
  /** ms a connection may live before closing with 1001. 0 = off (default) */
  maxLifetime?: number
  /** ms a started inbound message may take to complete, else close 1008. 0 = off; default 60000 */
  incompleteMessageTimeout?: number
  /**
   * Sees each inbound message before it is queued or emitted and returns what 'message'
   * listeners and the async iterator receive in its place, or `WebSocket.DROP` to drop it.
   * A throw is a listener error (1011). Used by schema-validated routes.
   */
  inbound?: (data: Buffer, binary: boolean) => unknown
  /** inbound budget (token buckets refilled by the shared clock); default: none */
  budget?: BudgetOptions | null
  /** counts messages each way (the plugin's metrics and diagnostics channels); default: none */
  meter?: ConnectionMeter
  /** turns the plain objects/arrays given to send() into JSON text; default JSON.stringify */
  serialize?: (value: unknown) => string
  // ---- permessage-deflate ----
  /** negotiated permessage-deflate parameters and local zlib settings; absent/null = not negotiated */
  perMessageDeflate?: { params: DeflateParams, threshold?: number, level?: number, memLevel?: number } | null
  /** the Sec-WebSocket-Extensions value answered in the 101 ('' when none) */
  extensions?: string
  /** the topic hub of subscribe()/publish() (the plugin gives its own); default: none */
  topics?: TopicHub
}

/** Options of `socket.publish(topic, data, options)`. */
export interface SocketPublishOptions {
  /** true: a binary message; false: text (bytes must be UTF-8). Default: from the data's type */
  binary?: boolean
  /** true: this socket receives the message too, if subscribed. Default false */
  self?: boolean
}

/** The options of `socket.subscribe(topic, options)`. */
export interface SubscribeOptions {
  /** on a topic with history: resume after this position (the last publication seen) */
  since?: { epoch: string, offset: number }
}

export type MessageData = string | Buffer

export type SendCallback = (error?: Error | null) => void

/** The options of `send(data, options, cb)`, as ws names them. */
export interface SendOptions {
  /** true: a binary message; false: a text message (bytes must be UTF-8). Default: from the data's type */
  binary?: boolean
  /** false: this message is not compressed with permessage-deflate. Default true (the threshold applies) */
  compress?: boolean
  /** false: more fragments of this message follow (RFC 6455 §5.4). Default true */
  fin?: boolean
  /** a server never masks (RFC 6455 §5.1): only false is accepted. Default false */
  mask?: boolean
}

/** Bytes send() takes as a binary message. */
export type BinaryData = Buffer | ArrayBuffer | ArrayBufferView
/** Objects that are not plain data: JSON would turn them into something else (or nothing). */
type NotPlainData = Date | RegExp | Map<unknown, unknown> | Set<unknown> | WeakMap<object, unknown> | WeakSet<object> |
  Promise<unknown> | Error | ((...args: any[]) => unknown)
/**
 * What send() accepts, as a check on the argument's type `T`: a string, bytes, or a plain
 * object or array (sent as JSON). `send(42)`, `send(new Date())` or `send(null)` do not compile.
 */
export type Sendable<T> = T extends string | BinaryData ? unknown : T extends NotPlainData ? never : T extends object ? unknown : never
/** Every value send() may be given, as one type (the check of `Sendable` aside). */
export type SendableData = string | BinaryData | object


/** Events of a WebSocket and their listener arguments. */
export interface WebSocketEvents {
  /** a message: text arrives as a Buffer of valid UTF-8 with isBinary false */
  message: [data: Buffer, isBinary: boolean]
  /** once, after the transport closed; 1005 = no code in the peer's Close, 1006 = no closing handshake */
  close: [code: number, reason: Buffer, wasClean: boolean]
  ping: [data: Buffer]
  pong: [data: Buffer]
  /** bufferedAmount fell back under the high-water mark after send() returned false */
  drain: []
  /** a protocol violation by the peer (only emitted when listened to; 'close' follows) */
  error: [error: Error]
  /** bufferedAmountPolicy 'drop': a message was not queued */
  dropped: [size: number, error: Error]
  /** an inbound message over the route's budget was dropped (budget policy 'drop') */
  budgetExceeded: [size: number, error: Error]
  /** the socket reported an error (reset, broken pipe); 'close' follows */
  transportError: [error: Error]
  newListener: [event: string | symbol, listener: (...args: any[]) => void]
  removeListener: [event: string | symbol, listener: (...args: any[]) => void]
}
