/**
 * The Fastify layer: options, the `ws` decorator, the `websocket: true` route option, the
 * upgrade listener and graceful shutdown.
 */
import type { FastifyInstance, FastifyPluginCallback, RouteHandlerMethod, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { CloseCode } from '../protocol/constants.js'
import type { WebSocket } from '../connection/connection.js'
import { resolveOptions, type WebSocketPluginOptions, type WebSocketRouteOptions } from './options.js'
import { createRouteHandler, type PluginState, type WebSocketHandler } from './route.js'
import { createUpgradeListener } from './upgrade.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Declare a WebSocket route: GET `path` upgraded to a WebSocket handled by `handler`. */
    ws: WebSocketRouteShorthand
    /** Open WebSocket connections of this plugin registration. */
    websocketConnections: ReadonlySet<WebSocket>
  }
  interface RouteShorthandOptions {
    /** this GET route is a WebSocket route: `handler` receives (socket, request) */
    websocket?: boolean
    /** WebSocket handler of a route whose `handler` serves plain HTTP */
    wsHandler?: WebSocketHandler
    /** per-route WebSocket options */
    ws?: WebSocketRouteOptions
  }
}

export interface WebSocketRouteShorthand {
  (path: string, handler: WebSocketHandler): FastifyInstance
  (path: string, options: WebSocketRouteOptions & Omit<RouteOptions, 'method' | 'url' | 'handler' | 'wsHandler' | 'websocket'>, handler: WebSocketHandler): FastifyInstance
}

const kHandled = Symbol('fastify-rfc6455.route')

const plugin: FastifyPluginCallback<WebSocketPluginOptions> = (fastify, pluginOptions, done) => {
  const state: PluginState = {
    options: resolveOptions(pluginOptions, undefined),
    connections: new Set(),
    closing: false
  }

  fastify.decorate('websocketConnections', state.connections)

  fastify.decorate('ws', function ws (this: FastifyInstance, path: string, optionsOrHandler: unknown, maybeHandler?: WebSocketHandler) {
    const [options, handler] = typeof optionsOrHandler === 'function'
      ? [{}, optionsOrHandler as WebSocketHandler]
      : [(optionsOrHandler ?? {}) as Record<string, unknown>, maybeHandler]
    if (typeof handler !== 'function') throw new TypeError('fastify-rfc6455: app.ws(path, [options], handler) needs a handler function')
    const { maxPayload, maxFragments, closeTimeout, protocols, ...routeRest } = options as WebSocketRouteOptions & Record<string, unknown>
    const wsOptions: WebSocketRouteOptions = { maxPayload, maxFragments, closeTimeout, protocols }
    // validate eagerly so a bad option fails at declaration, not at the first upgrade
    resolveOptions(wsOptions, state.options)
    this.route({
      ...routeRest,
      method: 'GET',
      url: path,
      handler: createRouteHandler(state, wsOptions, handler, undefined),
      [kHandled]: true
    } as RouteOptions)
    return this
  })

  fastify.addHook('onRoute', (route: RouteOptions & { [kHandled]?: boolean }) => {
    if (route[kHandled] === true) return
    const wsRouteOptions = route.ws ?? {}
    if (route.websocket === true) {
      resolveOptions(wsRouteOptions, state.options)
      route.handler = createRouteHandler(state, wsRouteOptions, route.handler as unknown as WebSocketHandler, undefined)
    } else if (typeof route.wsHandler === 'function') {
      resolveOptions(wsRouteOptions, state.options)
      route.handler = createRouteHandler(state, wsRouteOptions, route.wsHandler, route.handler as RouteHandlerMethod)
    }
  })

  const onUpgrade = createUpgradeListener(fastify)
  fastify.server.on('upgrade', onUpgrade)

  // preClose: before server.close(), which would otherwise wait for the upgraded sockets
  fastify.addHook('preClose', (done) => {
    state.closing = true
    fastify.server.removeListener('upgrade', onUpgrade)
    const open = [...state.connections]
    if (open.length === 0) { done(); return }
    let pending = open.length
    const closed = (): void => { if (--pending === 0) done() }
    for (const ws of open) {
      ws.once('close', closed)
      // RFC 6455 §7.4.1: 1001 "going away, such as a server going down"
      if (ws.readyState === 1) ws.close(CloseCode.GoingAway)
      else if (ws.readyState === 3) closed()
    }
  })

  done()
}

export const fastifyRfc6455 = fp(plugin, { fastify: '5.x', name: 'fastify-rfc6455' })
