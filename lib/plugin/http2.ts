/**
 * WebSockets over HTTP/2 (RFC 8441): the servers' 'connect' listener and the HTTP/2 side of the
 * upgrade context. Node's compatibility layer emits every CONNECT as 'connect', never as
 * 'request'; an extended CONNECT with `:protocol` websocket goes through Fastify's router and
 * lifecycle like an HTTP/1.1 Upgrade (routed as the GET it replaces), and a WebSocket route
 * answers 200 on the stream, which then carries the WebSocket.
 *
 * SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised only by a server whose app has a WebSocket
 * route (browsers use extended CONNECT as soon as a server sends it).
 */
import http2, { type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Stream } from 'node:http2'
import type { Server as NetServer } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { HandshakeError } from '../protocol/errors.js'
import { type HandshakeAnswer, responseHeaders, validateExtendedConnect, type ValidHandshake } from '../protocol/handshake.js'
import { setUpgrade, type UpgradeContext } from './upgrade.js'

const { HTTP_STATUS_METHOD_NOT_ALLOWED, HTTP_STATUS_NOT_FOUND, NGHTTP2_CANCEL } = http2.constants
const EMPTY = Buffer.alloc(0)

/** Servers (the app's own `fastify.server`) whose app declared a WebSocket route. */
const serversWithRoutes = new WeakSet<object>()

/** A WebSocket route was declared in an app served by `server`. */
export function noteWebSocketRoute (server: object): void {
  serversWithRoutes.add(server)
}

interface Http2Server extends NetServer {
  updateSettings: (settings: http2.Settings) => void
}

/** An HTTP/2 server (Http2Server, Http2SecureServer): the only ones with updateSettings(). */
export function isHttp2Server (server: NetServer): server is Http2Server {
  return typeof (server as Partial<Http2Server>).updateSettings === 'function'
}

const listeners = new WeakMap<NetServer, (req: Http2ServerRequest, res: Http2ServerResponse) => void>()

/**
 * Route the extended CONNECTs of the HTTP/2 servers among `servers` through `fastify`'s router
 * and, once the app is ready (its routes are known), advertise the setting if it has a WebSocket
 * route. Servers that are not HTTP/2 servers are left alone.
 */
export function listenForExtendedConnect (servers: readonly NetServer[], fastify: FastifyInstance): void {
  const h2 = servers.filter(isHttp2Server)
  if (h2.length === 0) return
  for (const server of h2) {
    if (listeners.has(server)) continue
    const listener = createConnectListener(server, fastify)
    listeners.set(server, listener)
    server.on('connect', listener)
  }
  fastify.addHook('onReady', function advertiseExtendedConnect (done) {
    // RFC 8441 §3: "SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8): Upon receipt of
    // SETTINGS_ENABLE_CONNECT_PROTOCOL with a value of 1, a client MAY use the Extended CONNECT"
    if (serversWithRoutes.has(fastify.server)) for (const server of h2) server.updateSettings({ enableConnectProtocol: true })
    done()
  })
}

/** Stop routing `server`'s extended CONNECTs (the app is closing); idempotent. */
export function stopExtendedConnect (server: NetServer): void {
  const listener = listeners.get(server)
  if (listener === undefined) return
  listeners.delete(server)
  server.removeListener('connect', listener)
}

function createConnectListener (server: NetServer, fastify: FastifyInstance): (req: Http2ServerRequest, res: Http2ServerResponse) => void {
  return function onConnect (req, res) {
    // another 'connect' listener (a proxy...) handles what this plugin does not
    const alone = server.listenerCount('connect') === 1
    if (!(req instanceof http2.Http2ServerRequest)) {
      // an HTTP/1.1 CONNECT on an allowHTTP1 server: (req, socket, head), dropped as Node does without a listener
      if (alone) (res as unknown as Duplex).destroy()
      return
    }
    const protocol = req.headers[':protocol']
    if (protocol === undefined) {
      // a classic CONNECT tunnel (RFC 9113 §8.5): not offered; Node's own answer without a listener
      if (alone) refuse(res, HTTP_STATUS_METHOD_NOT_ALLOWED)
      return
    }
    if (protocol !== 'websocket') {
      // RFC 8441 §4: another protocol over the tunnel; never a 200
      if (alone) refuseWith(res, validationError(req))
      return
    }
    const context = new Http2Upgrade(req.stream)
    setUpgrade(req, context)
    // RFC 8441 §5: "This request replaces the GET-based request in [RFC6455]": routed as that GET
    ;(req as { method: string }).method = 'GET'
    guardTunnel(res, context)
    try {
      fastify.routing(req as never, res as never)
    } catch (err) {
      fastify.log.warn({ err }, 'websocket extended CONNECT failed')
      req.stream.close(NGHTTP2_CANCEL)
    }
  }
}

function validationError (req: Http2ServerRequest): HandshakeError {
  try {
    validateExtendedConnect(req)
  } catch (err) {
    if (err instanceof HandshakeError) return err
  }
  return new HandshakeError('WS_ERR_HANDSHAKE_CONNECT_PROTOCOL', 501, 'extended CONNECT refused')
}

function refuse (res: Http2ServerResponse, statusCode: number): void {
  res.statusCode = statusCode
  res.end()
}

/** The JSON error body the route handler sends for a refused handshake, written without the router. */
function refuseWith (res: Http2ServerResponse, error: HandshakeError): void {
  const body = JSON.stringify({ statusCode: error.statusCode, code: error.code, error: 'WebSocket handshake failed', message: error.message })
  res.writeHead(error.statusCode, { ...error.headers, 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) })
  res.end(body)
}

/**
 * RFC 9113 §8.5: "A proxy that supports CONNECT establishes a TCP connection ... any 2xx
 * response" opens the tunnel. An extended CONNECT that reached a route which is not a WebSocket
 * route (a plain GET route answering 200) must not look like an accepted WebSocket: its 2xx
 * answer becomes a 404, as for a path with no WebSocket route.
 */
function guardTunnel (res: Http2ServerResponse, context: Http2Upgrade): void {
  const writeHead = res.writeHead
  res.writeHead = function guardedWriteHead (this: Http2ServerResponse, statusCode: number, ...rest: unknown[]) {
    if (context.hijacked || statusCode < 200 || statusCode >= 300) return (writeHead as (...args: unknown[]) => Http2ServerResponse).call(this, statusCode, ...rest)
    const body = JSON.stringify({ statusCode: HTTP_STATUS_NOT_FOUND, code: 'WS_ERR_NOT_WEBSOCKET_ROUTE', error: 'Not Found', message: 'no WebSocket route at this path' })
    // the route's own body is dropped: the response is the 404 alone
    this.write = () => true
    this.end = function (this: Http2ServerResponse) {
      http2.Http2ServerResponse.prototype.end.call(this, body, 'utf8')
      return this
    } as never
    return (writeHead as (...args: unknown[]) => Http2ServerResponse).call(this, HTTP_STATUS_NOT_FOUND, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) })
  } as never
}

/** The HTTP/2 side: the request came as an extended CONNECT on a stream of an HTTP/2 session. */
class Http2Upgrade implements UpgradeContext {
  readonly successStatus = 200
  readonly head = EMPTY
  hijacked = false
  readonly validate = validateExtendedConnect
  constructor (readonly socket: ServerHttp2Stream) {}

  accept (_handshake: ValidHandshake, answer: HandshakeAnswer): boolean {
    this.hijacked = true
    const stream = this.socket
    if (stream.destroyed || stream.closed) return false
    // RFC 8441 §5: "RST exceptions are represented with the RST_STREAM frame ... with the CANCEL
    // error code": an abrupt end (terminate(), a close timeout) resets with CANCEL, not NO_ERROR
    resetWithCancel(stream)
    // RFC 8441 §5.1: ":status = 200" with the RFC 6455 response-header fields, no Sec-WebSocket-Accept
    const headers: http2.OutgoingHttpHeaders = { ':status': 200 }
    const answerHeaders = responseHeaders(answer)
    for (const name of Object.keys(answerHeaders)) headers[name.toLowerCase()] = answerHeaders[name]
    stream.respond(headers)
    return true
  }
}

function resetWithCancel (stream: ServerHttp2Stream): void {
  const destroy = stream.destroy
  stream.destroy = function (this: ServerHttp2Stream, err?: Error) {
    if (!this.closed && !this.destroyed) this.close(NGHTTP2_CANCEL)
    return destroy.call(this, err)
  }
}
