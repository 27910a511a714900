/**
 * WebSocket routes: the route handler that `app.ws()`, `websocket: true` and `wsHandler` routes
 * get. It runs after Fastify's hooks (onRequest, preValidation, preHandler...), validates the
 * handshake and answers 101, or answers with the HTTP status the RFC asks for.
 *
 * The plugin state is looked up when a request arrives (`this[kState]`, the route's context), so
 * a route may be declared before the plugin is registered. A route whose context has no plugin
 * passes its arguments through untouched, as if this plugin were not there.
 */
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import { WebSocket } from '../connection/connection.js'
import { kAge } from '../connection/heartbeat.js'
import { type ConnectionSettings, type InternalOptions, kContext, kSettings, resolveSettings } from '../connection/settings.js'
import { argumentError, HandshakeError, TransportError, WebSocketUsageError } from '../protocol/errors.js'
import { HandshakeErrorCode, selectProtocol, type ValidHandshake } from '../protocol/handshake.js'
import { negotiatePerMessageDeflate } from '../protocol/permessage-deflate.js'
import { CloseCode } from '../protocol/constants.js'
import { compileMessageValidator, compileOutboundSerializer, createInbound, type MessageHandler, type MessageSchemas, type MessageValidator } from './messages.js'
import { type ResolvedOptions, resolveOptions, type WebSocketRouteOptions } from './options.js'
import { type CloseInfo, closedBy, logClosed, logUpgradeCompleted } from './connection-log.js'
import { addConnection, collectHooks, type Connections, deleteConnection, type HookLists } from './registry.js'
import type { TopicHub } from '../topics/hub.js'
import { takeResumeParameter } from './resume-parameter.js'
import { kState } from './symbols.js'
import { getUpgrade } from './upgrade.js'
import type { WebSocketMetrics } from './metrics.js'
import { channels } from './diagnostics.js'

export type WebSocketHandler = (this: FastifyInstance, socket: WebSocket, request: FastifyRequest) => void | Promise<unknown>

/** State shared by every route of one plugin registration. */
export interface PluginState extends Connections {
  options: ResolvedOptions
  closing: boolean
  /** the registration's topics (socket.subscribe/publish, app.publish) */
  topics: TopicHub
  /** counters of app.websocketMetrics() */
  metrics: WebSocketMetrics
  /** open connections per client address (maxConnectionsPerAddress) */
  byAddress: Map<string, number>
}

/** What a route declaration contributes, read once when the route is declared. */
export interface RouteDefinition {
  wsOptions: WebSocketRouteOptions
  schemas: MessageSchemas
  messageHandlers: Record<string, MessageHandler> | undefined
  wsHandler: WebSocketHandler
  /** the plain-HTTP handler of a `wsHandler` route */
  httpHandler: RouteHandlerMethod | undefined
}

/** Per route and plugin registration: options resolved and schemas compiled once. */
interface RouteRuntime {
  state: PluginState
  /** the route's Fastify instance (`this` of its handler, hooks and error handler) */
  instance: FastifyInstance
  options: ResolvedOptions
  /** the connection settings every WebSocket of the route shares */
  settings: ConnectionSettings
  /** the route's URL pattern (prefix included): the key of websocketConnectionsByRoute */
  route: string
}

/**
 * What one connection of a route keeps, in place of closures (memory per connection). The
 * request is kept only when something needs it later (an errorHandler, onClose hooks, JSON
 * messages), so an idle connection does not keep its request, reply and HTTP response alive.
 */
interface RouteConnection {
  runtime: RouteRuntime
  log: FastifyBaseLogger
  request: FastifyRequest | undefined
  hooks: HookLists | undefined
  /** the upgraded socket (who closed, bytes: for the close log line) */
  socket: Duplex
  /** the client address counted by maxConnectionsPerAddress (undefined: no limit anywhere) */
  address: string | undefined
  messagesIn: number
  messagesOut: number
}

function connectionOf (socket: WebSocket): RouteConnection {
  return socket[kContext] as RouteConnection
}

/** Pass `err` to the route's errorHandler, if any; one that throws is logged. */
function callErrorHandler (socket: WebSocket, err: unknown): void {
  const { log, runtime, request } = connectionOf(socket)
  const errorHandler = runtime.options.errorHandler
  if (errorHandler === undefined) return
  try {
    errorHandler.call(runtime.instance, err, socket, request!)
  } catch (handlerErr) {
    log.error({ err: handlerErr }, 'websocket errorHandler threw')
  }
}

/** A handler, listener or message handler threw: log it, the route's errorHandler, close 1011. */
function onHandlerError (socket: WebSocket, err: unknown): void {
  const connection = connectionOf(socket)
  connection.log.error({ err }, 'websocket handler threw')
  if (channels.error.hasSubscribers) channels.error.publish({ socket, route: connection.runtime.route, error: err })
  callErrorHandler(socket, err)
  // an unexpected exception closes with 1011 and no internal detail
  if (socket.readyState === WebSocket.OPEN) socket.close(CloseCode.InternalError)
}

function onListenerError (this: WebSocket, err: unknown): void {
  onHandlerError(this, err)
}

/**
 * The peer broke the protocol: RFC 6455 §7.1.7 "_Fail the WebSocket Connection_" is under way (the
 * Close frame with the error's close code). The peer's doing, so debug level, and the errorHandler.
 */
function onPeerError (this: WebSocket, err: Error): void {
  connectionOf(this).log.debug({ err }, 'websocket protocol error')
  callErrorHandler(this, err)
}

/** The socket failed under the connection (a reset...): the errorHandler gets a coded error. */
function onTransportError (this: WebSocket, err: Error): void {
  const error = new TransportError(err)
  connectionOf(this).log.debug({ err: error }, 'websocket transport error')
  callErrorHandler(this, error)
}

/** The connection closed: bookkeeping, the log line, onClose hooks. */
function onConnectionClose (this: WebSocket, code: number, reason: string, wasClean: boolean): void {
  const connection = connectionOf(this)
  const { runtime, log, hooks, socket } = connection
  const { state, route } = runtime
  deleteConnection(state, route, this)
  const address = connection.address
  if (address !== undefined) {
    const left = (state.byAddress.get(address) ?? 1) - 1
    if (left === 0) state.byAddress.delete(address)
    else state.byAddress.set(address, left)
  }
  const info: CloseInfo = { code, reason, wasClean, closedBy: closedBy(this, socket, state.closing), durationMs: this[kAge] }
  logClosed(log, route, info, this, socket)
  state.metrics.closed(route, socket, code, info.closedBy)
  publishClose(this, connection, info)
  if (hooks === undefined) return
  for (const hook of hooks.onClose) {
    try { hook.call(runtime.instance, this, connection.request!, info) } catch (err) { log.error({ err }, 'websocket onClose hook threw') }
  }
}

/** The close, heartbeat:timeout and (for a protocol failure) error channels. */
function publishClose (socket: WebSocket, connection: RouteConnection, info: { closedBy: string }): void {
  const route = connection.runtime.route
  if (socket.failure !== null && channels.error.hasSubscribers) channels.error.publish({ socket, route, error: socket.failure })
  if (info.closedBy === 'heartbeat' && channels.heartbeatTimeout.hasSubscribers) channels.heartbeatTimeout.publish({ socket, route })
  if (!channels.close.hasSubscribers) return
  const { bytesRead, bytesWritten } = connection.socket as Duplex & { bytesRead?: number, bytesWritten?: number }
  channels.close.publish({ socket, route, ...info, bytesRead, bytesWritten, messagesIn: connection.messagesIn, messagesOut: connection.messagesOut })
}

function requestOf (socket: WebSocket): FastifyRequest {
  return connectionOf(socket).request!
}

/** A WebSocket route's handler that is not a function: a TypeError with a stable code. */
export function invalidHandler (message: string): TypeError {
  return argumentError('type', 'FST_ERR_WS_INVALID_HANDLER', `fastify-rfc6455: ${message}`)
}

export interface RouteDeclaration {
  method: string | string[]
  url?: string
  handler?: unknown
  wsHandler?: unknown
  messageHandlers?: unknown
}

/** Refuse, at declaration, a WebSocket route that could never work. */
export function checkRouteDeclaration (route: RouteDeclaration, websocket: boolean): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method]
  // RFC 6455 §4.1: "The method of the request MUST be GET". HEAD is Fastify's automatic HEAD
  // route of a GET route: it answers an upgrade with 405 and a plain request with 426.
  if (methods.some((method) => typeof method !== 'string' || (method.toUpperCase() !== 'GET' && method.toUpperCase() !== 'HEAD'))) {
    throw new WebSocketUsageError('FST_ERR_WS_ROUTE_METHOD',
      `fastify-rfc6455: a WebSocket route must be a GET route; ${methods.join(', ')} ${route.url ?? ''} cannot be upgraded`)
  }
  if (websocket && typeof route.handler !== 'function') throw invalidHandler(`the handler of the websocket: true route ${route.url ?? ''} must be a function`)
  if (!websocket && typeof route.wsHandler !== 'function') throw invalidHandler(`the wsHandler of the route ${route.url ?? ''} must be a function`)
  const table = route.messageHandlers
  if (table !== undefined && (table === null || typeof table !== 'object' || !Object.values(table).every((fn) => typeof fn === 'function'))) {
    throw invalidHandler('messageHandlers must be an object of functions keyed by message type')
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** true for an upgrade request (a WebSocket handshake), false for a plain request */
    ws: boolean
  }
  interface FastifySchema {
    /** hide the route from generated documentation (true on WebSocket-only routes, as @fastify/swagger reads it) */
    hide?: boolean
  }
}

/** `request.ws`, read from the request itself: no per-request hook. */
export function decorateRequestWs (fastify: FastifyInstance): void {
  if (fastify.hasRequestDecorator('ws')) return
  fastify.decorateRequest('ws', {
    getter (this: FastifyRequest): boolean { return getUpgrade(this.raw) !== undefined }
  })
}

export function getState (instance: unknown): PluginState | undefined {
  return (instance as { [kState]?: PluginState } | undefined)?.[kState] ?? undefined
}

/** An upgrade refused before the 101: counted, published, answered. */
function refuseUpgrade (state: PluginState, request: FastifyRequest, reply: FastifyReply, error: HandshakeError): FastifyReply {
  const route = request.routeOptions.url ?? request.url
  state.metrics.refused(route, error.code)
  if (channels.upgradeRefused.hasSubscribers) channels.upgradeRefused.publish({ request, route, statusCode: error.statusCode, code: error.code })
  return sendHttpError(reply, error)
}

function sendHttpError (reply: FastifyReply, error: HandshakeError): FastifyReply {
  reply.code(error.statusCode)
  for (const name of Object.keys(error.headers)) reply.header(name, error.headers[name])
  return reply.send({ statusCode: error.statusCode, code: error.code, error: 'WebSocket handshake failed', message: error.message })
}

/** §4.2.2 /subprotocol/: the route's choice among the client's offers, if any. */
function negotiateProtocol (options: ResolvedOptions, handshake: ValidHandshake, request: FastifyRequest): string | undefined {
  if (typeof options.protocols === 'function') {
    const protocol = options.protocols(handshake.protocols, request)
    // RFC 6455 §4.2.2: "the value MUST be one of the values from the client's handshake"
    return protocol !== undefined && handshake.protocols.includes(protocol) ? protocol : undefined
  }
  return selectProtocol(handshake.protocols, options.protocols)
}

/**
 * A route was declared with a maxConnectionsPerAddress of its own. Every route is declared before
 * the server listens (Fastify refuses routes after ready), so this is settled before the first
 * upgrade: addresses are counted on every route when any limit exists, not at all otherwise.
 */
let routeLimitsAddresses = false

export function createRouteHandler (definition: RouteDefinition): RouteHandlerMethod {
  const { wsOptions, schemas, messageHandlers, wsHandler, httpHandler } = definition
  const perAddress = wsOptions.maxConnectionsPerAddress
  if (perAddress !== undefined && perAddress !== Infinity) routeLimitsAddresses = true
  const json = schemas.message !== undefined || messageHandlers !== undefined
  let runtime: RouteRuntime | undefined

  function prepare (instance: FastifyInstance, state: PluginState, request: FastifyRequest, reply: FastifyReply): RouteRuntime {
    if (runtime !== undefined && runtime.state === state && runtime.instance === instance) return runtime
    // resolved and compiled once per route (and plugin registration), with the route's compilers
    const options = resolveOptions(wsOptions, state.options)
    const validate = schemas.message === undefined ? undefined : compileMessageValidator(request, schemas.message)
    const settings = resolveSettings({
      maxPayload: options.maxPayload,
      maxFragments: options.maxFragments,
      closeTimeout: options.closeTimeout,
      sharedReadBuffer: options.sharedReadBuffer,
      lentMessages: options.lentMessages,
      // flow control and liveness
      heartbeatInterval: options.heartbeatInterval,
      idleTimeout: options.idleTimeout,
      maxLifetime: options.maxLifetime,
      incompleteMessageTimeout: options.incompleteMessageTimeout,
      maxBufferedAmount: options.maxBufferedAmount,
      bufferedAmountPolicy: options.bufferedAmountPolicy,
      maxQueuedMessages: options.maxQueuedMessages,
      maxQueuedBytes: options.maxQueuedBytes,
      budget: options.inboundBudget,
      meter: state.metrics.meter(request.routeOptions.url ?? request.url, connectionOf as (socket: object) => RouteConnection),
      onListenerError,
      topics: state.topics,
      serialize: schemas.outbound === undefined ? undefined : compileOutboundSerializer(reply, schemas.outbound),
      inbound: json
        ? createInbound({ validate, policy: options.invalidMessage, handlers: messageHandlers, request: requestOf, onHandlerError })
        : undefined
    }, onConnectionClose)
    return (runtime = { state, instance, options, settings, route: request.routeOptions.url ?? request.url })
  }

  return function webSocketRouteHandler (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
    const state = getState(this)
    if (state === undefined) {
      // an upgrade routed here by this plugin (registered in another context): say so
      if ((request as Partial<FastifyRequest> | undefined)?.raw !== undefined && getUpgrade(request.raw) !== undefined) {
        throw new WebSocketUsageError('FST_ERR_WS_NOT_REGISTERED', `fastify-rfc6455 is not registered in the context of the WebSocket route ${request.url}`)
      }
      // no plugin in this route's context: behave as if the route were a plain one
      // eslint-disable-next-line prefer-rest-params
      return ((httpHandler ?? wsHandler) as (...args: unknown[]) => unknown).apply(this, arguments as unknown as unknown[])
    }
    const upgrade = getUpgrade(request.raw)
    if (upgrade === undefined) {
      if (httpHandler !== undefined) return httpHandler.call(this, request, reply)
      // a plain GET to a WebSocket-only route: RFC 7231 §6.5.15 426 Upgrade Required
      return sendHttpError(reply, new HandshakeError(HandshakeErrorCode.NotUpgrade, 426,
        'this resource requires a WebSocket upgrade', { upgrade: 'websocket', connection: 'Upgrade' }))
    }

    // ---- the opening handshake: validation ----
    let handshake: ValidHandshake
    try {
      // RFC 6455 §4.2.1 for an Upgrade, RFC 8441 §5 for an extended CONNECT
      handshake = upgrade.validate(request.raw)
    } catch (err) {
      if (err instanceof HandshakeError) return refuseUpgrade(state, request, reply, err)
      throw err
    }
    if (state.closing) {
      return refuseUpgrade(state, request, reply, new HandshakeError('WS_ERR_SERVER_CLOSING', 503, 'the server is shutting down'))
    }
    const currentRuntime = prepare(this, state, request, reply)
    const options = currentRuntime.options
    // ---- origin allow-list and connection limits, before the 101 ----
    const origin = request.headers.origin
    if (options.allowedOrigins !== undefined && !options.allowedOrigins(typeof origin === 'string' ? origin : undefined, request)) {
      // cross-site WebSocket hijacking. RFC 6455 §4.2.2: "If the server does not wish to accept
      // this connection, it MUST return an appropriate HTTP error code (e.g., 403 Forbidden)"
      return refuseUpgrade(state, request, reply, new HandshakeError('WS_ERR_ORIGIN_FORBIDDEN', 403, 'this origin may not open a WebSocket here'))
    }
    if (state.connections.size >= state.options.maxConnections ||
        (state.byRoute.get(currentRuntime.route)?.size ?? 0) >= options.maxConnections) {
      return refuseUpgrade(state, request, reply, new HandshakeError('WS_ERR_TOO_MANY_CONNECTIONS', 503, 'too many WebSocket connections', { 'retry-after': '1' }))
    }
    // Memory and time: reading request.ip makes the socket cache its peer address (an object and
    // a string per connection) and costs a getpeername(2) system call, so it is read only when
    // some limit counts addresses
    const address = routeLimitsAddresses || state.options.maxConnectionsPerAddress !== Infinity ? request.ip : undefined
    if (address !== undefined && (state.byAddress.get(address) ?? 0) >= options.maxConnectionsPerAddress) {
      // RFC 6585 §4: 429 Too Many Requests
      return refuseUpgrade(state, request, reply, new HandshakeError('WS_ERR_TOO_MANY_CONNECTIONS_PER_ADDRESS', 429, 'too many WebSocket connections from this address', { 'retry-after': '1' }))
    }
    // ---- end of the admission checks ----

    // ---- the opening handshake: negotiation and the response headers ----
    const protocol = negotiateProtocol(options, handshake, request)
    // permessage-deflate (RFC 7692 §5: the first acceptable offer wins, or none)
    const pmd = options.perMessageDeflate
    const deflate = pmd === null ? null : negotiatePerMessageDeflate(handshake.extensions, pmd)

    reply.hijack()
    const socket = upgrade.socket
    // the transport writes the answer: a 101 on HTTP/1.1, a 200 HEADERS frame on HTTP/2
    if (!upgrade.accept(handshake, { protocol, extensions: deflate?.response })) return
    logUpgradeCompleted(request, reply, upgrade.successStatus)

    // ---- the connection ----
    const log = request.log
    const route = currentRuntime.route
    const hooks = collectHooks(this)
    const connection: RouteConnection = {
      runtime: currentRuntime,
      log,
      request: json || options.errorHandler !== undefined || (hooks !== undefined && hooks.onClose.length > 0) ? request : undefined,
      hooks,
      socket,
      address,
      messagesIn: 0,
      messagesOut: 0
    }
    const connectionOptions: InternalOptions = {
      protocol,
      // permessage-deflate
      extensions: deflate?.response,
      perMessageDeflate: deflate === null || pmd === null ? null : { params: deflate.params, threshold: pmd.threshold, level: pmd.level, memLevel: pmd.memLevel },
      [kSettings]: currentRuntime.settings,
      [kContext]: connection
    }
    const ws = new WebSocket(socket, connectionOptions)
    if (state.topics.history !== null) takeResumeParameter(ws, request)
    addConnection(state, route, ws)
    if (address !== undefined) state.byAddress.set(address, (state.byAddress.get(address) ?? 0) + 1)
    state.metrics.opened(route, socket)
    if (channels.open.hasSubscribers) channels.open.publish({ socket: ws, request, route, protocol: ws.protocol, extensions: ws.extensions })
    if (options.errorHandler !== undefined) {
      // as @fastify/websocket: errors of the established connection reach the errorHandler
      ws.on('error', onPeerError)
      ws.on('transportError', onTransportError)
    }
    log.debug({ route, protocol }, 'websocket open')
    try {
      if (hooks !== undefined) for (const hook of hooks.onOpen) hook.call(this, ws, request)
      const result = wsHandler.call(this, ws, request)
      if (result !== undefined && result !== null && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(undefined, onListenerError.bind(ws))
      }
    } catch (err) {
      onHandlerError(ws, err)
    }
    // bytes that came with the upgrade request are parsed once the handler had its chance to listen
    ws.receive(upgrade.head)
  }
}
