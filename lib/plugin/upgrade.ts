/**
 * The servers' 'upgrade' listener: every upgrade request goes through Fastify's router and
 * lifecycle (onRequest, preValidation, preHandler hooks, schema), exactly like a plain request.
 * A route that is not a WebSocket route answers with its normal HTTP response (404 if none),
 * written to the socket, which is then closed: never a 101.
 *
 * One listener per HTTP server, however many times the plugin is registered in the app (in a
 * parent and a child context, in sibling contexts): the router finds the route, and the route
 * finds the options of the registration nearest to it. A second listener would route every
 * upgrade twice and write a second response into the live connection.
 */
import { type IncomingMessage, ServerResponse } from 'node:http'
import type { Server as NetServer } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { argumentError } from '../protocol/errors.js'
import { buildAcceptResponse, type HandshakeAnswer, type HandshakeRequest, validateHandshake, type ValidHandshake } from '../protocol/handshake.js'
import { OptionErrorCode } from './option-errors.js'
import { kUpgrade } from './symbols.js'

/**
 * A WebSocket handshake in progress, as the route handler sees it, whatever HTTP version it
 * came on: an HTTP/1.1 Upgrade (this file) or an HTTP/2 extended CONNECT (http2.ts).
 */
export interface UpgradeContext {
  /** the status that answers a successful handshake: 101 (RFC 6455 §4.2.2) or 200 (RFC 8441 §5) */
  readonly successStatus: number
  /** the byte stream the WebSocket runs over: the TCP socket, or the HTTP/2 stream */
  readonly socket: Duplex
  /** bytes that came after the request head (HTTP/1.1 only; empty on HTTP/2) */
  readonly head: Buffer
  /** set when a WebSocket route took the socket over */
  hijacked: boolean
  /** This HTTP version's validator. Throws HandshakeError with the HTTP answer. */
  validate: (req: HandshakeRequest) => ValidHandshake
  /**
   * Take the socket over for the WebSocket and write the success response with `answer`'s
   * headers, the transport's way. False when the peer is already gone (nothing was written).
   */
  accept: (handshake: ValidHandshake, answer: HandshakeAnswer) => boolean
}

type UpgradeRequest = { [kUpgrade]?: UpgradeContext }

export function getUpgrade (req: object): UpgradeContext | undefined {
  return (req as UpgradeRequest)[kUpgrade]
}

export function setUpgrade (req: object, context: UpgradeContext): void {
  (req as UpgradeRequest)[kUpgrade] = context
}

/** The HTTP/1.1 side: the request came as an Upgrade on a TCP socket. */
class Http1Upgrade implements UpgradeContext {
  readonly successStatus = 101
  hijacked = false
  readonly validate = validateHandshake
  constructor (readonly socket: Duplex, readonly head: Buffer, readonly response: ServerResponse) {}

  accept (handshake: ValidHandshake, answer: HandshakeAnswer): boolean {
    this.hijacked = true
    // detach the socket from the HTTP response: the WebSocket owns it from here
    this.response.detachSocket(this.socket as never)
    this.socket.removeListener('error', onEarlySocketError)
    if (this.socket.destroyed) return false
    // RFC 6455 §4.2.2 (5): the 101 with Upgrade, Connection and Sec-WebSocket-Accept
    this.socket.write(buildAcceptResponse(handshake.key!, answer))
    return true
  }
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

/** The listener of one server, and the app whose router it feeds. */
interface UpgradeDispatcher {
  routing: FastifyInstance['routing']
  listener: UpgradeListener
}

/** Per server: a foreign 'upgrade' listener was seen and reported (a warning once, then debug). */
interface ForeignListenerReport { reported: boolean }

const dispatchers = new WeakMap<NetServer, UpgradeDispatcher>()

/**
 * Route the upgrade requests of `servers` through `fastify`'s router. Idempotent per server and
 * app; a server already served by another app is refused before any listener is added (each
 * upgrade would be answered twice).
 */
export function listenForUpgrades (servers: readonly NetServer[], fastify: FastifyInstance): void {
  for (const server of servers) {
    const existing = dispatchers.get(server)
    if (existing !== undefined && existing.routing !== fastify.routing) {
      throw argumentError('type', OptionErrorCode.ServerInUse,
        'fastify-rfc6455: this server\'s upgrade requests are already routed by another Fastify app; a server can serve one app\'s WebSocket routes')
    }
  }
  for (const server of servers) {
    if (dispatchers.has(server)) continue
    const listener = createUpgradeListener(fastify, { reported: false })
    dispatchers.set(server, { routing: fastify.routing, listener })
    server.on('upgrade', listener)
  }
}

/** Stop routing `server`'s upgrades (the app is closing); idempotent. */
export function stopUpgrades (server: NetServer): void {
  const dispatcher = dispatchers.get(server)
  if (dispatcher === undefined) return
  dispatchers.delete(server)
  server.removeListener('upgrade', dispatcher.listener)
}

function createUpgradeListener (fastify: FastifyInstance, foreign: ForeignListenerReport): UpgradeListener {
  return function onUpgrade (req, socket, head) {
    // another 'upgrade' listener ran first and ended or destroyed the socket: nothing to answer
    if (socket.destroyed || !socket.writable) return
    // Node removes its own socket error listener before 'upgrade': a reset must not crash us
    socket.on('error', onEarlySocketError)
    const response = new ServerResponse(req)
    response.shouldKeepAlive = false
    try {
      response.assignSocket(socket as never)
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_HTTP_SOCKET_ASSIGNED') {
        // another listener's ServerResponse holds the socket: that listener answers
        reportForeignListener(foreign, fastify.log, req)
        closeAfterForeignAnswer(socket)
      } else {
        fastify.log.warn({ err }, 'websocket upgrade failed')
        socket.destroy()
      }
      return
    }
    // Node removes its own readers before 'upgrade': a reader now is another listener that
    // took the socket (e.g. a `ws` server sharing this server, which already wrote its 101); a
    // second response would corrupt its stream
    if (socket.listenerCount('data') > 0 || socket.listenerCount('readable') > 0) {
      response.detachSocket(socket as never)
      reportForeignListener(foreign, fastify.log, req)
      return
    }
    const context = new Http1Upgrade(socket, head, response)
    setUpgrade(req, context)
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

function reportForeignListener (foreign: ForeignListenerReport, log: FastifyBaseLogger, req: IncomingMessage): void {
  if (!foreign.reported) {
    foreign.reported = true
    log.warn({ url: req.url }, 'another \'upgrade\' listener of this server answers upgrade requests; fastify-rfc6455 leaves those to it')
  } else {
    log.debug({ url: req.url }, 'upgrade request answered by another \'upgrade\' listener')
  }
}

/**
 * Once the HTTP answer another listener wrote on an upgrade socket is complete (anything but a
 * 101), close the socket: Node parses no more requests on a socket handed to 'upgrade', so
 * nothing else can happen on it and the client would otherwise wait for the close forever.
 */
function closeAfterForeignAnswer (socket: Duplex): void {
  const owner = (socket as { _httpMessage?: unknown })._httpMessage
  if (!(owner instanceof ServerResponse)) return
  const end = (): void => {
    if (owner.socket === socket && owner.statusCode !== 101 && !socket.writableEnded) socket.end()
  }
  if (owner.writableFinished) end()
  else owner.once('finish', end)
}

function onEarlySocketError (this: Duplex): void {
  this.destroy()
}
