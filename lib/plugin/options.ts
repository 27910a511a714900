/**
 * Plugin and route options, with their defaults. Route options override plugin options.
 */
import type { FastifyRequest } from 'fastify'
import type { WebSocket } from '../connection/connection.js'
import { Defaults } from '../protocol/constants.js'
import { LimitDefaults } from '../connection/limits.js'
import { type PerMessageDeflateOptions, type ResolvedDeflateOptions, resolveDeflateOptions } from '../connection/deflate.js' // issue 4
import type { InvalidMessageError } from './messages.js'
import type { TopicAdapter } from '../topics/adapter.js'

export type ProtocolSelector = (offered: string[], request: FastifyRequest) => string | undefined

/**
 * Receives an error thrown by a WebSocket handler (sync or async) or a message handler, after it
 * was logged with `request.log`; the socket is closed with 1011 afterwards if still open.
 */
export type WebSocketErrorHandler = (error: unknown, socket: WebSocket, request: FastifyRequest) => void

/**
 * Decides about an inbound message refused by `schema.message` (not JSON, binary, a forbidden
 * key, or not matching the schema). It may send, close, or do nothing; the handler never sees it.
 */
export type InvalidMessageHandler = (error: InvalidMessageError, socket: WebSocket, request: FastifyRequest) => void

/**
 * What happens to an inbound message refused by `schema.message`:
 * - `'reply'` (default): the connection stays open and the peer receives a JSON error
 *   `{ type: 'error', code, message, errors: [{ instancePath, message }] }`
 * - `'close'`: close with 1007 (not JSON), 1003 (binary) or 1008 (schema, forbidden key)
 * - a function: it decides
 */
export type InvalidMessagePolicy = 'reply' | 'close' | InvalidMessageHandler

export interface WebSocketRouteOptions extends LimitOptions {
  /** largest message accepted, in bytes (after reassembly); default 1 MiB; 0 or Infinity: no limit */
  maxPayload?: number
  /** most fragments one message may arrive in; default 16384 */
  maxFragments?: number
  /** ms to wait for the peer's answer to our Close before destroying the socket; default 5000 */
  closeTimeout?: number
  /** read plain TCP sockets into one shared buffer, copying messages out (see README); default true */
  sharedReadBuffer?: boolean
  /**
   * Subprotocols this route speaks, or a function that picks one of the client's offers.
   * With a list the first client-offered one (client preference) that the route supports wins.
   * Default: none (the 101 never carries Sec-WebSocket-Protocol).
   */
  protocols?: readonly string[] | ProtocolSelector
  /** policy for messages refused by `schema.message`; default 'reply' */
  invalidMessage?: InvalidMessagePolicy
  /** called with handler errors (after logging); default: none */
  errorHandler?: WebSocketErrorHandler
  /**
   * permessage-deflate (RFC 7692): `true` for the defaults, an object for settings (a route's
   * object is merged over the plugin's), `false` to turn it off. Default: off (issue 4).
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions
}

// ---- flow control, liveness and admission limits (issue 5) ----------------------------------
// Connection-level defaults and their rationale: lib/connection/limits.ts.

/** Decides whether a browser page from `origin` may open this WebSocket (undefined: no Origin header). */
export type OriginCheck = (origin: string | undefined, request: FastifyRequest) => boolean

export interface LimitOptions {
  /** ms of peer silence before a Ping; terminated when silent as long again. 0 = off; default 30000 */
  heartbeatInterval?: number
  /** ms without a data message either way before closing with 1001. 0 = off (default) */
  idleTimeout?: number
  /** ms a connection may live before closing with 1001. 0 = off (default) */
  maxLifetime?: number
  /** ms a started inbound message may take to complete, else close 1008. 0 = off; default 60000 */
  incompleteMessageTimeout?: number
  /** outbound bytes a connection may hold (bufferedAmount); default max(4 MiB, 4 x maxPayload) */
  maxBufferedAmount?: number
  /** over maxBufferedAmount: 'close' with 1008 (default) or 'drop' the message and report it */
  bufferedAmountPolicy?: 'close' | 'drop'
  /** inbound messages waiting for a slow consumer before reading pauses; default 1024 */
  maxQueuedMessages?: number
  /** inbound bytes waiting for a slow consumer before reading pauses; default max(1 MiB, maxPayload) */
  maxQueuedBytes?: number
  /**
   * Origins allowed to open the WebSocket (cross-site WebSocket hijacking): exact
   * `scheme://host[:port]` strings (case-insensitive) or a function. Others get 403 before the
   * upgrade. A request without Origin (not a browser) is allowed by a list. Default: any origin.
   */
  allowedOrigins?: readonly string[] | OriginCheck
  /**
   * Open WebSocket connections allowed (plugin option: over all routes of the registration;
   * route option: on that route). Excess upgrades get 503 before the handshake. Default: no limit.
   */
  maxConnections?: number
}

export const limitOptionKeys = {
  heartbeatInterval: true,
  idleTimeout: true,
  maxLifetime: true,
  incompleteMessageTimeout: true,
  maxBufferedAmount: true,
  bufferedAmountPolicy: true,
  maxQueuedMessages: true,
  maxQueuedBytes: true,
  allowedOrigins: true,
  maxConnections: true
} as const satisfies Record<keyof LimitOptions, true>

export interface ResolvedLimits {
  heartbeatInterval: number
  idleTimeout: number
  maxLifetime: number
  incompleteMessageTimeout: number
  /** undefined: derived from maxPayload by the connection */
  maxBufferedAmount: number | undefined
  bufferedAmountPolicy: 'close' | 'drop'
  maxQueuedMessages: number
  maxQueuedBytes: number | undefined
  allowedOrigins: OriginCheck | undefined
  maxConnections: number
}

function limitInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (value === Infinity && name === 'maxConnections') return value
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`fastify-rfc6455: option ${name} must be a non-negative integer`)
  }
  return value
}

function originCheck (value: LimitOptions['allowedOrigins']): OriginCheck | undefined {
  if (value === undefined || typeof value === 'function') return value
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new TypeError('fastify-rfc6455: option allowedOrigins must be an array of strings or a function')
  }
  const allowed = new Set(value.map((v) => v.toLowerCase()))
  // RFC 6454 §7.3: the Origin header is one serialized origin ("null" for opaque origins)
  return (origin) => origin === undefined || allowed.has(origin.toLowerCase())
}

/** Route limits fall back to the plugin's (base); the plugin's fall back to the defaults. */
export function resolveLimits (route: LimitOptions | undefined, base: ResolvedLimits | undefined): ResolvedLimits {
  const policy = route?.bufferedAmountPolicy ?? base?.bufferedAmountPolicy ?? LimitDefaults.bufferedAmountPolicy
  if (policy !== 'close' && policy !== 'drop') {
    throw new TypeError("fastify-rfc6455: option bufferedAmountPolicy must be 'close' or 'drop'")
  }
  const optional = (name: 'maxBufferedAmount' | 'maxQueuedBytes'): number | undefined => {
    const v = route?.[name]
    return v === undefined ? base?.[name] : limitInteger(name, v, 0)
  }
  return {
    heartbeatInterval: limitInteger('heartbeatInterval', route?.heartbeatInterval, base?.heartbeatInterval ?? LimitDefaults.heartbeatInterval),
    idleTimeout: limitInteger('idleTimeout', route?.idleTimeout, base?.idleTimeout ?? LimitDefaults.idleTimeout),
    maxLifetime: limitInteger('maxLifetime', route?.maxLifetime, base?.maxLifetime ?? LimitDefaults.maxLifetime),
    incompleteMessageTimeout: limitInteger('incompleteMessageTimeout', route?.incompleteMessageTimeout, base?.incompleteMessageTimeout ?? LimitDefaults.incompleteMessageTimeout),
    maxBufferedAmount: optional('maxBufferedAmount'),
    bufferedAmountPolicy: policy,
    maxQueuedMessages: limitInteger('maxQueuedMessages', route?.maxQueuedMessages, base?.maxQueuedMessages ?? LimitDefaults.maxQueuedMessages),
    maxQueuedBytes: optional('maxQueuedBytes'),
    allowedOrigins: route?.allowedOrigins === undefined ? base?.allowedOrigins : originCheck(route.allowedOrigins),
    maxConnections: limitInteger('maxConnections', route?.maxConnections, base?.maxConnections ?? Infinity)
  }
}
// ---- end of issue 5 limits ----

/**
 * The names of WebSocketRouteOptions: `app.ws(path, options, handler)` takes those marked true at
 * the top level of `options`, next to Fastify's route options, and all of them under `ws`. Add a
 * new option here too (the compiler insists).
 */
export const routeOptionKeys = {
  maxPayload: true,
  maxFragments: true,
  closeTimeout: true,
  sharedReadBuffer: true,
  protocols: true,
  invalidMessage: true,
  // false: a top-level `errorHandler` is Fastify's own (HTTP) route option
  errorHandler: false,
  perMessageDeflate: true,
  ...limitOptionKeys
} as const satisfies Record<keyof WebSocketRouteOptions, boolean>

/** Split `app.ws()` options into WebSocket options and Fastify route options. */
export function splitRouteOptions (options: Record<string, unknown>): { ws: WebSocketRouteOptions, route: Record<string, unknown> } {
  const ws: Record<string, unknown> = { ...(options.ws as object | undefined) }
  const route: Record<string, unknown> = {}
  for (const key of Object.keys(options)) {
    if (key === 'ws') continue
    if (Object.hasOwn(routeOptionKeys, key) && routeOptionKeys[key as keyof typeof routeOptionKeys]) ws[key] = options[key]
    else route[key] = options[key]
  }
  return { ws: ws as WebSocketRouteOptions, route }
}

export interface WebSocketPluginOptions extends WebSocketRouteOptions {
  /** carries topic publications to other processes (a TopicAdapter); default: in-process only */
  adapter?: TopicAdapter
}

export interface ResolvedOptions extends ResolvedLimits {
  maxPayload: number
  maxFragments: number
  closeTimeout: number
  sharedReadBuffer: boolean
  protocols: readonly string[] | ProtocolSelector
  invalidMessage: InvalidMessagePolicy
  errorHandler: WebSocketErrorHandler | undefined
  /** null: permessage-deflate is not offered back (issue 4) */
  perMessageDeflate: ResolvedDeflateOptions | null
}

function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`fastify-rfc6455: option ${name} must be a non-negative integer`)
  }
  return value
}

export function resolveOptions (route: WebSocketRouteOptions | undefined, base: ResolvedOptions | undefined): ResolvedOptions {
  const fallback: ResolvedOptions = base ?? {
    ...resolveLimits(undefined, undefined),
    maxPayload: Defaults.maxPayload,
    maxFragments: Defaults.maxFragments,
    closeTimeout: Defaults.closeTimeout,
    sharedReadBuffer: true,
    protocols: [],
    invalidMessage: 'reply',
    errorHandler: undefined,
    perMessageDeflate: null
  }
  const protocols = route?.protocols ?? fallback.protocols
  if (!Array.isArray(protocols) && typeof protocols !== 'function') {
    throw new TypeError('fastify-rfc6455: option protocols must be an array of strings or a function')
  }
  const invalidMessage = route?.invalidMessage ?? fallback.invalidMessage
  if (invalidMessage !== 'reply' && invalidMessage !== 'close' && typeof invalidMessage !== 'function') {
    throw new TypeError("fastify-rfc6455: option invalidMessage must be 'reply', 'close' or a function")
  }
  const sharedReadBuffer = route?.sharedReadBuffer ?? fallback.sharedReadBuffer
  if (typeof sharedReadBuffer !== 'boolean') throw new TypeError('fastify-rfc6455: option sharedReadBuffer must be a boolean')
  const errorHandler = route?.errorHandler ?? fallback.errorHandler
  if (errorHandler !== undefined && typeof errorHandler !== 'function') {
    throw new TypeError('fastify-rfc6455: option errorHandler must be a function')
  }
  return {
    ...resolveLimits(route, base),
    invalidMessage,
    errorHandler,
    perMessageDeflate: resolveDeflateOptions(route?.perMessageDeflate, fallback.perMessageDeflate),
    // 0 (as in ws) and Infinity: no limit (lib/connection/limits.ts resolveMaxPayload)
    maxPayload: route?.maxPayload === Infinity ? Infinity : positiveInteger('maxPayload', route?.maxPayload, fallback.maxPayload),
    maxFragments: positiveInteger('maxFragments', route?.maxFragments, fallback.maxFragments),
    closeTimeout: positiveInteger('closeTimeout', route?.closeTimeout, fallback.closeTimeout),
    sharedReadBuffer,
    protocols
  }
}

