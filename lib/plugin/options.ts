/**
 * Plugin and route options: their types, one table of defaults and checks, and the resolution of
 * a registration's options and of a route's over them (route options override plugin options).
 */
import type { Server as NetServer } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from '../connection/connection.js'
import { Defaults } from '../protocol/constants.js'
import { LimitDefaults } from '../connection/limits.js'
import { type PerMessageDeflateOptions, type ResolvedDeflateOptions, resolveDeflateOptions } from '../connection/deflate.js'
import type { TopicAdapter } from '../topics/adapter.js'
import type { TopicHubHistoryOptions } from '../topics/hub.js'
import { type HistoryPluginOptions, topicHistory } from './history-options.js'
import type { BudgetOptions } from '../connection/budget.js'
import type { ServeAsyncApiOptions } from './asyncapi.js'
import type { InvalidMessageError } from './messages.js'
import { checkOptionNames, invalidOption, movedOptionError, withOptionName } from './option-errors.js'
import { isStringList, originCheckOf } from './origin-check.js'

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
   * Binary messages of 16 KiB or more reach 'message' listeners as views of reused memory, valid
   * only until the listener returns (or its promise settles): copy what you keep (see README); default false
   */
  lentMessages?: boolean
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
   * object is merged over the plugin's), `false` to turn it off. Default: off.
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions
}

// ---- flow control, liveness and admission limits ---------------------------------------------
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
   * `scheme://host[:port]` strings (case-insensitive), `'same-origin'` (the Origin's host must be
   * the request's Host), a list mixing both, or a function. Others get 403 before the upgrade. A
   * request without Origin (not a browser) is allowed by a list. Default: any origin.
   */
  allowedOrigins?: 'same-origin' | readonly string[] | OriginCheck
  /**
   * Open WebSocket connections allowed (plugin option: over all routes of the registration;
   * route option: on that route). Excess upgrades get 503 before the handshake. Default: no limit.
   */
  maxConnections?: number
  /**
   * Open WebSocket connections one client address (`request.ip`) may hold over the routes of the
   * registration. Excess upgrades get 429 before the handshake. Default: no limit.
   */
  maxConnectionsPerAddress?: number
  /**
   * Inbound budget of each connection: messages and payload bytes per second (token buckets,
   * a burst of `burst` seconds' worth allowed), policy 'close' (1008, default) or 'drop' (the
   * message is dropped, 'budgetExceeded' emitted). Default: none.
   */
  inboundBudget?: Partial<BudgetOptions>
}


// ---- plugin-only options --------------------------------------------------------------------

/**
 * Runs when the app closes, before the plugin closes the remaining connections with 1001: say
 * goodbye, persist state. `this` is the registration's Fastify instance. Async (without a
 * parameter), or calling `done` when it declares one.
 */
export type PreCloseHook = (this: FastifyInstance, done: (error?: Error) => void) => void | Promise<unknown>

export interface WebSocketPluginOptions extends WebSocketRouteOptions {
  /**
   * Another HTTP(S) server whose upgrade requests this app serves too (routed through the app's
   * router and hooks, like those of `app.server`). Default: `app.server` only.
   */
  server?: NetServer
  /** run on `app.close()` before the open connections are closed with 1001; default: none */
  preClose?: PreCloseHook
  /** carries topic publications to other processes; default: in-process only */
  adapter?: TopicAdapter
  /** serve `app.asyncapi()` at GET `path` (default '/asyncapi.json'); `true` for the defaults. Default: not served */
  asyncapi?: boolean | ServeAsyncApiOptions
  /**
   * Keep the last publications of topics so that subscribers resume after a reconnection
   * (resumable streams; see README). `true` for the defaults. Default: off.
   */
  history?: boolean | HistoryPluginOptions
}


// ---- the option table -----------------------------------------------------------------------
// One entry per option: its default and the check that turns a given value into the resolved
// one (or throws FST_ERR_WS_INVALID_OPTION). A new option is one entry here, one field in the
// interface above and one row in the README's Options table.

interface OptionRule<T> {
  readonly default: T
  /** `inherited`: the plugin's resolved value when a route sets the option, else the default */
  readonly check: (value: unknown, name: string, inherited: T) => T
  /** `app.ws()` takes it at the top level of its options, next to Fastify's (else under `ws` only) */
  readonly topLevel: boolean
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyRule = OptionRule<any>

function option<T> (defaultValue: T, check: OptionRule<T>['check'], topLevel = true): OptionRule<T> {
  return { default: defaultValue, check, topLevel }
}

function integer (value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw invalidOption(`option ${name} must be a non-negative integer`)
  }
  return value
}

function integerOrInfinity (value: unknown, name: string): number {
  if (value === Infinity) return value
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw invalidOption(`option ${name} must be a non-negative integer or Infinity`)
  }
  return value
}

function oneOf<const T extends string> (...values: T[]) {
  return (value: unknown, name: string): T => {
    if (!values.includes(value as T)) throw invalidOption(`option ${name} must be ${values.map((v) => `'${v}'`).join(' or ')}`)
    return value as T
  }
}

function isFunction<F> (value: unknown, name: string): F {
  if (typeof value !== 'function') throw invalidOption(`option ${name} must be a function`)
  return value as F
}

function protocolList (value: unknown, name: string): readonly string[] | ProtocolSelector {
  if (typeof value !== 'function' && !isStringList(value)) throw invalidOption(`option ${name} must be an array of strings or a function`)
  return value as readonly string[] | ProtocolSelector
}

function inboundBudget (value: unknown, name: string): BudgetOptions {
  if (value === null || typeof value !== 'object') throw invalidOption(`option ${name} must be an object { messagesPerSecond, bytesPerSecond, burst, policy }`)
  const given = value as Record<string, unknown>
  checkOptionNames(given, ['messagesPerSecond', 'bytesPerSecond', 'burst', 'policy'], name)
  const burst = given.burst ?? 1
  if (typeof burst !== 'number' || !(burst > 0) || !Number.isFinite(burst)) throw invalidOption(`option ${name}.burst must be a positive number of seconds`)
  return {
    messagesPerSecond: given.messagesPerSecond === undefined ? 0 : integer(given.messagesPerSecond, `${name}.messagesPerSecond`),
    bytesPerSecond: given.bytesPerSecond === undefined ? 0 : integer(given.bytesPerSecond, `${name}.bytesPerSecond`),
    burst,
    policy: given.policy === undefined ? 'close' : oneOf('close', 'drop')(given.policy, `${name}.policy`)
  }
}

function invalidMessagePolicy (value: unknown, name: string): InvalidMessagePolicy {
  if (value !== 'reply' && value !== 'close' && typeof value !== 'function') {
    throw invalidOption(`option ${name} must be 'reply', 'close' or a function`)
  }
  return value as InvalidMessagePolicy
}

function boolean (value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidOption(`option ${name} must be a boolean`)
  return value
}

const routeOptionTable = {
  // 0 (as in ws) and Infinity: no limit (lib/connection/limits.ts resolveMaxPayload)
  maxPayload: option(Defaults.maxPayload, integerOrInfinity),
  maxFragments: option(Defaults.maxFragments, integer),
  closeTimeout: option(Defaults.closeTimeout, integer),
  sharedReadBuffer: option(true, boolean),
  lentMessages: option(false, boolean),
  protocols: option<readonly string[] | ProtocolSelector>([], protocolList),
  invalidMessage: option<InvalidMessagePolicy>('reply', invalidMessagePolicy),
  // under `ws` only: a top-level `errorHandler` is Fastify's own (HTTP) route option
  errorHandler: option<WebSocketErrorHandler | undefined>(undefined, isFunction, false),
  // null: permessage-deflate is not offered back; a route's object is merged over the plugin's
  perMessageDeflate: option<ResolvedDeflateOptions | null>(null, (value, name, inherited) =>
    withOptionName(name, () => resolveDeflateOptions(value as boolean | PerMessageDeflateOptions, inherited))),
  // flow control, liveness and admission (defaults and rationale: lib/connection/limits.ts)
  heartbeatInterval: option(LimitDefaults.heartbeatInterval, integer),
  idleTimeout: option(LimitDefaults.idleTimeout, integer),
  maxLifetime: option(LimitDefaults.maxLifetime, integer),
  incompleteMessageTimeout: option(LimitDefaults.incompleteMessageTimeout, integer),
  // undefined: derived from maxPayload by the connection
  maxBufferedAmount: option<number | undefined>(undefined, integer),
  bufferedAmountPolicy: option<'close' | 'drop'>(LimitDefaults.bufferedAmountPolicy, oneOf('close', 'drop')),
  maxQueuedMessages: option(LimitDefaults.maxQueuedMessages, integer),
  maxQueuedBytes: option<number | undefined>(undefined, integer),
  allowedOrigins: option<OriginCheck | undefined>(undefined, originCheckOf),
  maxConnections: option(Infinity, integerOrInfinity),
  maxConnectionsPerAddress: option(Infinity, integerOrInfinity),
  inboundBudget: option<BudgetOptions | null>(null, inboundBudget)
} as const satisfies { [K in keyof WebSocketRouteOptions]-?: AnyRule }

type RouteOptionName = keyof typeof routeOptionTable
const routeOptionNames = Object.keys(routeOptionTable) as RouteOptionName[]

/** The options of a route (and the defaults of a registration's routes), resolved and checked. */
export type ResolvedOptions = { -readonly [K in RouteOptionName]: (typeof routeOptionTable)[K]['default'] }
export type ResolvedLimits = Pick<ResolvedOptions, keyof LimitOptions>

function isTopicAdapter (value: unknown, name: string): TopicAdapter {
  const methods = ['init', 'subscribe', 'unsubscribe', 'publish', 'subscriberCount', 'close'] as const
  const missing = value !== null && typeof value === 'object'
    ? methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function')
    : methods
  if (missing.length > 0) throw invalidOption(`option ${name} must be a topic adapter object with the methods ${methods.join(', ')} (missing: ${missing.join(', ')})`)
  return value as TopicAdapter
}

function upgradeServer (value: unknown, name: string): NetServer {
  const server = value as Partial<NetServer> | null
  if (server === null || typeof server !== 'object' || typeof server.on !== 'function' || typeof server.removeListener !== 'function') {
    throw invalidOption(`option ${name} must be an http or https server`)
  }
  return value as NetServer
}

function serveAsyncApi (value: unknown, name: string): ServeAsyncApiOptions | undefined {
  if (value === false) return undefined
  if (value === true) return { path: '/asyncapi.json' }
  const given = value as ServeAsyncApiOptions | null
  if (given === null || typeof given !== 'object' || (given.path !== undefined && (typeof given.path !== 'string' || !given.path.startsWith('/')))) {
    throw invalidOption(`option ${name} must be true or { path: '/...', info, servers }`)
  }
  return { ...given, path: given.path ?? '/asyncapi.json' }
}

const pluginOptionTable = {
  server: option<NetServer | undefined>(undefined, upgradeServer),
  preClose: option<PreCloseHook | undefined>(undefined, isFunction),
  adapter: option<TopicAdapter | undefined>(undefined, isTopicAdapter),
  asyncapi: option<ServeAsyncApiOptions | undefined>(undefined, serveAsyncApi),
  history: option<TopicHubHistoryOptions | undefined>(undefined, topicHistory)
} as const satisfies { [K in Exclude<keyof WebSocketPluginOptions, RouteOptionName>]-?: AnyRule }

type PluginOptionName = keyof typeof pluginOptionTable
const pluginOptionNames = Object.keys(pluginOptionTable) as PluginOptionName[]

/** The options of one registration: its routes' defaults and its own settings. */
export interface ResolvedPluginOptions {
  route: ResolvedOptions
  server: NetServer | undefined
  preClose: PreCloseHook | undefined
  adapter: TopicAdapter | undefined
  asyncapi: ServeAsyncApiOptions | undefined
  history: TopicHubHistoryOptions | undefined
}

/** Options of `app.register()` itself, which Fastify passes on to the plugin too. */
const registerOptionNames = ['prefix', 'logLevel', 'logSerializers']

// ---- resolution -----------------------------------------------------------------------------

function resolveTable<T extends Record<string, AnyRule>> (
  table: T, names: ReadonlyArray<keyof T & string>, given: Record<string, unknown>, base: { [K in keyof T]: T[K]['default'] } | undefined
): { [K in keyof T]: T[K]['default'] } {
  const out: Record<string, unknown> = {}
  for (const name of names) {
    const rule = table[name]
    const inherited = base === undefined ? rule.default : base[name]
    const value = given[name]
    out[name] = value === undefined ? inherited : rule.check(value, name, inherited)
  }
  return out as { [K in keyof T]: T[K]['default'] }
}

/**
 * A route's options over its registration's (base), or a registration's over the defaults
 * (base undefined). Throws a coded error for a bad value or a name that is no route option.
 */
export function resolveOptions (route: WebSocketRouteOptions | undefined, base: ResolvedOptions | undefined): ResolvedOptions {
  const given = (route ?? {}) as Record<string, unknown>
  if (base !== undefined) {
    const pluginOnly = Object.keys(given).filter((name) => Object.hasOwn(pluginOptionTable, name))
    if (pluginOnly.length > 0) {
      const [what, pronoun] = pluginOnly.length === 1 ? ['is a plugin option', 'it'] : ['are plugin options', 'them']
      throw invalidOption(`${pluginOnly.join(', ')} ${what}, not route options: give ${pronoun} to app.register()`)
    }
    checkOptionNames(given, routeOptionNames, 'route')
  }
  return resolveTable(routeOptionTable, routeOptionNames, given, base)
}

/** `app.register(websocket, options)`: every name known, every value checked. */
export function resolvePluginOptions (options: unknown): ResolvedPluginOptions {
  if (options === undefined || options === null) options = {}
  if (typeof options !== 'object') throw invalidOption('the plugin options must be an object')
  const given = options as Record<string, unknown>
  // @fastify/websocket's `options` held the `ws` server's options: say where each one went
  if (given.options !== undefined) {
    const inner = given.options !== null && typeof given.options === 'object' ? Object.keys(given.options) : []
    throw movedOptionError(inner, 'the `options` object (ws server options)')
  }
  checkOptionNames(given, [...routeOptionNames, ...pluginOptionNames, ...registerOptionNames], 'plugin')
  return {
    route: resolveTable(routeOptionTable, routeOptionNames, given, undefined),
    ...resolveTable(pluginOptionTable, pluginOptionNames, given, undefined)
  }
}

/**
 * `app.ws(path, options, handler)`: the WebSocket options are those under `ws` and the top-level
 * names the table marks `topLevel`; the rest are Fastify's route options.
 */
export function splitRouteOptions (options: Record<string, unknown>): { ws: WebSocketRouteOptions, route: Record<string, unknown> } {
  const ws: Record<string, unknown> = { ...(options.ws as object | undefined) }
  const route: Record<string, unknown> = {}
  for (const key of Object.keys(options)) {
    if (key === 'ws') continue
    if (Object.hasOwn(routeOptionTable, key) && routeOptionTable[key as RouteOptionName].topLevel) ws[key] = options[key]
    else route[key] = options[key]
  }
  return { ws: ws as WebSocketRouteOptions, route }
}
