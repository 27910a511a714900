/**
 * The server's 'upgrade' listener: every upgrade request goes through Fastify's router and
 * lifecycle (onRequest, preValidation, preHandler hooks, schema), exactly like a plain request.
 * A route that is not a WebSocket route answers with its normal HTTP response (404 if none),
 * written to the socket, which is then closed: never a 101.
 */
import { type IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { kUpgrade } from './symbols.js'

export interface UpgradeContext {
  socket: Duplex
  head: Buffer
  response: ServerResponse
  /** set when a WebSocket route took the socket over */
  hijacked: boolean
}

type UpgradeRequest = IncomingMessage & { [kUpgrade]?: UpgradeContext }

export function getUpgrade (req: IncomingMessage): UpgradeContext | undefined {
  return (req as UpgradeRequest)[kUpgrade]
}

export function createUpgradeListener (fastify: FastifyInstance) {
  return function onUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node removes its own socket error listener before 'upgrade': a reset must not crash us
    socket.on('error', onEarlySocketError)
    const response = new ServerResponse(req)
    response.shouldKeepAlive = false
    response.assignSocket(socket as never)
    const context: UpgradeContext = { socket, head, response, hijacked: false }
    ;(req as UpgradeRequest)[kUpgrade] = context
    response.on('finish', () => {
      // an HTTP answer (404, 401, 426 ...) went out instead of a 101: end the connection
      if (!context.hijacked) socket.end()
    })
    try {
      fastify.routing(req, response)
    } catch (err) {
      fastify.log.warn({ err }, 'websocket upgrade failed')
      socket.destroy()
    }
  }
}

function onEarlySocketError (this: Duplex): void {
  this.destroy()
}

/** Take the socket over for the WebSocket: detach it from the HTTP response. */
export function hijackSocket (context: UpgradeContext): void {
  context.hijacked = true
  context.response.detachSocket(context.socket as never)
  context.socket.removeListener('error', onEarlySocketError)
}
