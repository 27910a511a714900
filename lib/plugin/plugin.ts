/**
 * The Fastify layer: options, decorators (`ws`, `injectWS`, the connection registry,
 * `addWebSocketHook`), the `websocket: true` / `wsHandler` route options, the upgrade listener,
 * the HTTP/2 extended CONNECT listener and graceful shutdown. REST routes pay nothing: no per-request hook is added.
 *
 * Route declaration order does not matter. Routes are turned into WebSocket routes by an
 * 'onRoute' hook, which this module adds to every Fastify instance when it is created (through
 * Fastify's documented `fastify.initialization` diagnostics channel) and, for an instance created
 * before this module was loaded, when the plugin is registered. The route handler finds the
 * plugin's state when a request arrives, so the plugin may be registered after the routes, or in
 * a parent context.
 */
import diagnostics from 'node:diagnostics_channel'
import type { FastifyInstance, FastifyPluginCallback, RouteHandlerMethod, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { argumentError } from '../protocol/errors.js'
import { asyncapi, recordRoute, serveAsyncApi, updateRouteUrl } from './asyncapi.js'
import { resolveContractRoute } from './contract-route.js'
import { injectWS } from './inject.js'
import type { MessageHandler } from './messages.js'
import { OptionErrorCode } from './option-errors.js'
import { resolveOptions, resolvePluginOptions, splitRouteOptions, type WebSocketPluginOptions } from './options.js'
import { addWebSocketHook } from './registry.js'
import { checkRouteDeclaration, createRouteHandler, decorateRequestWs, getState, invalidHandler, type PluginState, type WebSocketHandler } from './route.js'
import { kRouteDone, kState } from './symbols.js'
import { addShutdownHook } from './shutdown.js'
import { WebSocketMetrics } from './metrics.js'
import { decorateTopics, startTopicAdapter } from './topics.js'
import { TopicHub } from '../topics/hub.js'
import { listenForUpgrades } from './upgrade.js'
import { listenForExtendedConnect, noteWebSocketRoute } from './http2.js'
import './types.js'

type WebSocketRouteDeclaration = RouteOptions & {
  [kRouteDone]?: boolean
  websocket?: boolean
  wsHandler?: WebSocketHandler
  messageHandlers?: Record<string, MessageHandler>
  contract?: unknown
}

function noHandler (): void {}

/**
 * Turn a route declared with `websocket: true` or `wsHandler` into a WebSocket route. A misuse
 * throws a coded error here, so at the declaration (or through register()/ready()).
 */
function onRoute (this: FastifyInstance, route: WebSocketRouteDeclaration): void {
  if (route[kRouteDone] === true) {
    updateRouteUrl(route)
    return
  }
  const websocket = route.websocket === true
  if (!websocket && route.wsHandler === undefined) return
  checkRouteDeclaration(route, websocket)
  route[kRouteDone] = true
  // an HTTP/2 server advertises extended CONNECT only when its app has a WebSocket route
  noteWebSocketRoute(this.server)
  const { ws: wsOptions } = splitRouteOptions(route as unknown as Record<string, unknown>)
  // validate eagerly so a bad option fails at declaration, not at the first upgrade (a route
  // declared before the plugin, maybe for another WebSocket plugin, is checked at its first upgrade)
  const state = getState(this)
  if (state !== undefined) resolveOptions(wsOptions, state.options)
  let schema = route.schema as { message?: unknown, outbound?: unknown, hide?: boolean } | undefined
  let messageHandlers = route.messageHandlers
  if (route.contract !== undefined) {
    const resolved = resolveContractRoute(route.contract, schema, messageHandlers)
    schema = { ...schema, ...resolved.schemas }
    messageHandlers = resolved.handlers
  }
  recordRoute(this, route, schema)
  // a WebSocket-only route has nothing to document as HTTP: hidden, as @fastify/websocket does,
  // unless the route says otherwise (documentation plugins read schema.hide in their hooks)
  if (websocket) route.schema = { ...schema, hide: schema?.hide ?? true }
  route.handler = createRouteHandler({
    wsOptions,
    schemas: { message: schema?.message, outbound: schema?.outbound },
    messageHandlers,
    wsHandler: websocket ? route.handler as unknown as WebSocketHandler : route.wsHandler!,
    httpHandler: websocket ? undefined : route.handler as RouteHandlerMethod
  })
}

diagnostics.subscribe('fastify.initialization', (message) => {
  const app = (message as { fastify?: FastifyInstance } | undefined)?.fastify
  if (app !== undefined && typeof app.addHook === 'function') app.addHook('onRoute', onRoute)
})

/** `app.ws(path, [options], handler)`: a GET route with `websocket: true`, in this context. */
function ws (this: FastifyInstance, path: string, optionsOrHandler: unknown, maybeHandler?: WebSocketHandler): FastifyInstance {
  const [options, handler] = typeof optionsOrHandler === 'function'
    ? [{} as Record<string, unknown>, optionsOrHandler as WebSocketHandler]
    : [(optionsOrHandler ?? {}) as Record<string, unknown>, maybeHandler]
  if (handler === undefined ? options.messageHandlers === undefined : typeof handler !== 'function') {
    throw invalidHandler('app.ws(path, [options], handler) needs a handler function (or options.messageHandlers)')
  }
  const { ws: wsOptions, route } = splitRouteOptions(options)
  const declaration = { ...route, method: 'GET', url: path, websocket: true, ws: wsOptions, handler: handler ?? noHandler } as unknown as WebSocketRouteDeclaration
  // turned into a WebSocket route here: this context may predate the plugin's 'onRoute' hook
  onRoute.call(this, declaration)
  this.route(declaration)
  return this
}

/** One registration: its options checked first, its 'upgrade' listener added last. Throws a coded error to refuse it. */
function register (fastify: FastifyInstance, pluginOptions: unknown): TopicHub {
  // fastify.decorate() would throw its own error for the second one: say what happened
  if (Object.hasOwn(fastify, kState)) {
    throw argumentError('type', OptionErrorCode.AlreadyRegistered,
      'fastify-rfc6455 is already registered on this Fastify instance (register it once; a child context may register it again with its own options)')
  }
  const options = resolvePluginOptions(pluginOptions)
  const state: PluginState = {
    options: options.route,
    connections: new Set(),
    byRoute: new Map(),
    closing: false,
    topics: new TopicHub({ adapter: options.adapter, history: options.history, log: fastify.log }),
    metrics: new WebSocketMetrics(),
    byAddress: new Map()
  }
  const servers = options.server === undefined || options.server === fastify.server ? [fastify.server] : [fastify.server, options.server]

  fastify.decorate(kState, state)
  fastify.decorate('websocketConnections', state.connections)
  fastify.decorate('websocketConnectionsByRoute', state.byRoute)
  fastify.decorate('addWebSocketHook', addWebSocketHook)
  fastify.decorate('websocketMetrics', () => state.metrics.snapshot())
  fastify.decorate('ws', ws)
  fastify.decorate('injectWS', injectWS)
  fastify.decorate('asyncapi', asyncapi)
  decorateRequestWs(fastify)
  // for an instance created before this module was loaded (idempotent otherwise)
  fastify.addHook('onRoute', onRoute)
  addShutdownHook(fastify, state, { servers, preClose: options.preClose })
  decorateTopics(fastify, state.topics)
  if (options.asyncapi !== undefined) serveAsyncApi(fastify, options.asyncapi)
  // last: the only step with an effect outside this instance (one listener per server)
  listenForUpgrades(servers, fastify)
  listenForExtendedConnect(servers, fastify)
  return state.topics
}

/** A refused registration rejects `register()` / `ready()` with its coded error, never throws. */
const plugin: FastifyPluginCallback<WebSocketPluginOptions> = (fastify, pluginOptions, done) => {
  let topics: TopicHub
  try {
    topics = register(fastify, pluginOptions)
  } catch (err) {
    done(err as Error)
    return
  }
  // ready once the topic adapter is (it may connect first)
  startTopicAdapter(topics, done)
}

export const fastifyRfc6455 = fp(plugin, { fastify: '5.x', name: 'fastify-rfc6455' })
