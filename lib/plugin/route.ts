/**
 * WebSocket routes: `app.ws(path, [options], handler)` and the `websocket: true` route option.
 * The route handler runs after Fastify's hooks; it validates the handshake and answers 101, or
 * answers with the HTTP status the RFC asks for.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify'
import { WebSocket } from '../connection/connection.js'
import { CloseCode } from '../protocol/constants.js'
import { HandshakeError } from '../protocol/errors.js'
import { buildAcceptResponse, HandshakeErrorCode, selectProtocol, validateHandshake } from '../protocol/handshake.js'
import { type ResolvedOptions, resolveOptions, type WebSocketRouteOptions } from './options.js'
import { getUpgrade, hijackSocket } from './upgrade.js'

export type WebSocketHandler = (this: FastifyInstance, socket: WebSocket, request: FastifyRequest) => void | Promise<unknown>

/** State shared by every route of one plugin registration. */
export interface PluginState {
  options: ResolvedOptions
  connections: Set<WebSocket>
  closing: boolean
}

function sendHttpError (reply: FastifyReply, error: HandshakeError): FastifyReply {
  reply.code(error.statusCode)
  for (const name of Object.keys(error.headers)) reply.header(name, error.headers[name])
  return reply.send({ statusCode: error.statusCode, code: error.code, error: 'WebSocket handshake failed', message: error.message })
}

export function createRouteHandler (
  state: PluginState,
  routeOptions: WebSocketRouteOptions,
  wsHandler: WebSocketHandler,
  httpHandler: RouteHandlerMethod | undefined
): RouteHandlerMethod {
  let resolved: ResolvedOptions | undefined
  return function webSocketRouteHandler (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
    const upgrade = getUpgrade(request.raw)
    if (upgrade === undefined) {
      if (httpHandler !== undefined) return httpHandler.call(this, request, reply)
      // a plain GET to a WebSocket-only route: RFC 7231 §6.5.15 426 Upgrade Required
      return sendHttpError(reply, new HandshakeError(HandshakeErrorCode.NotUpgrade, 426,
        'this resource requires a WebSocket upgrade', { upgrade: 'websocket', connection: 'Upgrade' }))
    }
    let handshake
    try {
      handshake = validateHandshake(request.raw)
    } catch (err) {
      if (err instanceof HandshakeError) return sendHttpError(reply, err)
      throw err
    }
    if (state.closing) {
      return sendHttpError(reply, new HandshakeError('WS_ERR_SERVER_CLOSING', 503, 'the server is shutting down'))
    }
    const options = resolved ??= resolveOptions(routeOptions, state.options)
    let protocol: string | undefined
    if (typeof options.protocols === 'function') {
      protocol = options.protocols(handshake.protocols, request)
      // §4.2.2: the chosen subprotocol MUST be one the client offered
      if (protocol !== undefined && !handshake.protocols.includes(protocol)) protocol = undefined
    } else {
      protocol = selectProtocol(handshake.protocols, options.protocols)
    }

    reply.hijack()
    const socket = upgrade.socket
    hijackSocket(upgrade)
    if (socket.destroyed) return
    socket.write(buildAcceptResponse(handshake.key, { protocol }))
    const log = request.log
    const ws = new WebSocket(socket, {
      maxPayload: options.maxPayload,
      maxFragments: options.maxFragments,
      closeTimeout: options.closeTimeout,
      protocol,
      onListenerError: (err) => log.error({ err }, 'websocket listener threw')
    })
    const opened = Date.now()
    state.connections.add(ws)
    ws.once('close', (code: number, _reason: Buffer, wasClean: boolean) => {
      state.connections.delete(ws)
      log.debug({ code, wasClean, durationMs: Date.now() - opened, error: ws.failure?.code }, 'websocket closed')
    })
    log.debug({ protocol }, 'websocket open')
    const onHandlerError = (err: unknown): void => {
      log.error({ err }, 'websocket handler threw')
      if (ws.readyState === WebSocket.OPEN) ws.close(CloseCode.InternalError)
    }
    try {
      const result = wsHandler.call(this, ws, request)
      if (result !== undefined && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(undefined, onHandlerError)
      }
    } catch (err) {
      onHandlerError(err)
    }
    // bytes that came with the upgrade request are parsed once the handler had its chance to listen
    ws.receive(upgrade.head)
  }
}
