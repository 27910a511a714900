/**
 * `app.injectWS(path, options, hooks)`: a connected client WebSocket without a network, for tests.
 *
 * An in-memory socket pair stands in for TCP. The server end is handed to the app's HTTP server
 * as a new connection, so the upgrade request goes through Node's HTTP parser, the 'upgrade'
 * listener, Fastify's router and hooks, and the real handshake; the client end is read by
 * Node's HTTP client, then spoken to by a client-role WebSocket (masked frames, the same codec).
 * An http2 app gets an HTTP/2 session on the memory socket and an RFC 8441 extended CONNECT
 * (inject-h2.ts), which goes through the 'connect' listener, the same router and hooks.
 */
import { randomBytes } from 'node:crypto'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { Duplex } from 'node:stream'
import { Server as TlsServer } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { isHttp2Server, openOverHttp2, type OpenedSocket } from './inject-h2.js'
import { WebSocket } from '../connection/connection.js'
import { ownBytes } from '../connection/message-pool.js'
import { argumentError } from '../protocol/errors.js'
import { acceptKey } from '../protocol/handshake.js'
import { acceptDeflateResponse, buildDeflateOffer, type DeflateClientOffer } from '../protocol/permessage-deflate.js'

export interface InjectWSOptions {
  /** extra request headers (e.g. authorization, origin) */
  headers?: Record<string, string>
  /** query string, as an object or an already encoded string */
  query?: Record<string, string | readonly string[]> | string
  /** subprotocols to offer (Sec-WebSocket-Protocol) */
  protocols?: readonly string[]
  /** largest message the client accepts; default 1 MiB */
  maxPayload?: number
  /** ms the client waits for the server's close before dropping the connection; default 5000 */
  closeTimeout?: number
  /**
   * offer permessage-deflate (RFC 7692): `true` for a bare offer, or the offer's parameters and
   * the size from which the client compresses (`threshold`, default 1024); default false
   */
  perMessageDeflate?: boolean | (DeflateClientOffer & { threshold?: number })
}

/**
 * The third argument of `injectWS()`, as @fastify/websocket's: functions that receive the client
 * socket before `injectWS()` resolves. A throw rejects `injectWS()` and drops the connection.
 */
export interface InjectWSHooks {
  /** once the 101 arrived, before the socket reads any frame: attach listeners here */
  onInit?: (socket: WebSocket) => void
  /** then, with the socket open (it may send) */
  onOpen?: (socket: WebSocket) => void
}

function checkHooks (hooks: InjectWSHooks): void {
  for (const name of ['onInit', 'onOpen'] as const) {
    const hook: unknown = hooks[name]
    if (hook !== undefined && typeof hook !== 'function') {
      throw argumentError('type', 'FST_ERR_WS_INVALID_HOOK', `fastify-rfc6455: injectWS() hook ${name} must be a function`)
    }
  }
}

/** The upgrade was answered with something other than 101: status, headers and body. */
export class WebSocketUpgradeError extends Error {
  readonly code = 'FST_ERR_WS_UPGRADE_REFUSED'
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
  constructor (statusCode: number, headers: IncomingHttpHeaders, body: string) {
    super(`the WebSocket upgrade was refused with ${statusCode}`)
    this.name = 'WebSocketUpgradeError'
    this.statusCode = statusCode
    this.headers = headers
    this.body = body
  }

  /** the body parsed as JSON */
  json (): unknown {
    return JSON.parse(this.body)
  }
}

/** One end of an in-memory, backpressured, half-closable byte stream pair. */
class MemorySocket extends Duplex {
  peer: MemorySocket | undefined
  private blocked: (() => void) | null = null
  // what Node's HTTP server and Fastify read from a net.Socket
  readonly remoteAddress = '127.0.0.1'
  readonly remotePort = 0
  readonly remoteFamily = 'IPv4'
  readonly localAddress = '127.0.0.1'
  readonly localPort = 0
  /** set on the server end for an https app (Fastify's request.protocol reads it) */
  encrypted: boolean | undefined
  /** the protocol "negotiated" by ALPN for an https app: false is none (HTTP/1.1), 'h2' HTTP/2 */
  alpnProtocol: string | false | undefined

  setNoDelay (): this { return this }
  setKeepAlive (): this { return this }
  setTimeout (): this { return this }
  ref (): this { return this }
  unref (): this { return this }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer!
    if (peer.destroyed || peer.readableEnded) {
      callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
      return
    }
    // the peer keeps what is pushed past this callback: lent bytes (lentMessages) are copied
    if (peer.push(ownBytes(chunk))) callback()
    else peer.blocked = callback
  }

  override _read (): void {
    const blocked = this.blocked
    if (blocked !== null) {
      this.blocked = null
      blocked()
    }
  }

  override _final (callback: (error?: Error | null) => void): void {
    const peer = this.peer!
    if (!peer.destroyed) peer.push(null)
    callback()
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer!
    if (!peer.destroyed) {
      // like a TCP reset after the bytes already in flight: the peer reads them, then closes
      if (!peer.readableEnded) peer.push(null)
      if (peer.readableEnded) peer.destroy()
      else peer.once('end', () => peer.destroy())
    }
    callback(error)
  }
}

export function memorySocketPair (): [MemorySocket, MemorySocket] {
  const a = new MemorySocket()
  const b = new MemorySocket()
  a.peer = b
  b.peer = a
  return [a, b]
}

function withQuery (path: string, query: InjectWSOptions['query']): string {
  if (query === undefined) return path
  const encoded = typeof query === 'string'
    ? query.replace(/^\?/, '')
    : new URLSearchParams(Object.entries(query).flatMap(([k, v]): Array<[string, string]> => (typeof v === 'string' ? [[k, v]] : v.map((x) => [k, x])))).toString()
  if (encoded === '') return path
  return path + (path.includes('?') ? '&' : '?') + encoded
}

/** The `injectWS(path, options, hooks)` decorator. */
export async function injectWS (this: FastifyInstance, path = '/', options: InjectWSOptions = {}, hooks: InjectWSHooks = {}): Promise<WebSocket> {
  checkHooks(hooks ?? {})
  await this.ready()
  const deflate = options.perMessageDeflate === true ? {} : options.perMessageDeflate === false ? undefined : options.perMessageDeflate
  // built (and its parameters checked) before a connection exists
  const offer = deflate === undefined ? undefined : buildDeflateOffer(deflate)
  const headers: Record<string, string> = { 'sec-websocket-version': '13', ...options.headers }
  if (options.protocols !== undefined && options.protocols.length > 0) headers['sec-websocket-protocol'] = options.protocols.join(', ')
  if (offer !== undefined) headers['sec-websocket-extensions'] = offer
  const target = withQuery(path, options.query)
  // an http2 app is spoken to as a browser would: an RFC 8441 extended CONNECT on an HTTP/2 session
  const opened = isHttp2Server(this.server) ? await openOverHttp2(this.server, target, headers) : await openOverHttp1(this.server, target, headers)
  const extensions = opened.headers['sec-websocket-extensions']
  let params
  try {
    // RFC 7692 §5 / RFC 6455 §4.1: a response the client MUST fail the connection on throws
    params = acceptDeflateResponse(extensions, deflate ?? null)
  } catch (err) {
    opened.socket.destroy()
    throw err
  }
  const protocol = opened.headers['sec-websocket-protocol']
  const ws = new WebSocket(opened.socket, {
    role: 'client',
    protocol: typeof protocol === 'string' ? protocol : '',
    maxPayload: options.maxPayload,
    closeTimeout: options.closeTimeout,
    extensions: params === null ? undefined : extensions as string,
    perMessageDeflate: params === null ? null : { params, threshold: deflate?.threshold }
  })
  try {
    // both before the bytes that came with the 101 (the server's first messages) are read
    hooks?.onInit?.(ws)
    hooks?.onOpen?.(ws)
  } catch (err) {
    ws.terminate()
    throw err
  }
  ws.receive(opened.head)
  return ws
}

/** The server end of a memory socket pair becomes a new connection of `server`. */
export function connectInMemory (server: FastifyInstance['server'], options: { alpn?: string } = {}): MemorySocket {
  const [client, end] = memorySocketPair()
  if (server instanceof TlsServer) {
    // an https app: skip TLS (nothing to protect in memory) and hand over a "secure" connection
    end.encrypted = true
    end.alpnProtocol = options.alpn ?? false
    server.emit('secureConnection', end)
  } else {
    server.emit('connection', end)
  }
  return client
}

/** RFC 6455 §4.1 over the memory socket: a GET with Upgrade, answered by a 101 with the right accept. */
function openOverHttp1 (server: FastifyInstance['server'], target: string, extra: Record<string, string>): Promise<OpenedSocket> {
  const client = connectInMemory(server)
  const key = randomBytes(16).toString('base64')
  const headers = { host: 'localhost', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, ...extra }
  return new Promise<OpenedSocket>((resolve, reject) => {
    const req = httpRequest({ method: 'GET', path: target, headers, createConnection: () => client as never })
    req.once('upgrade', (res, socket, head) => {
      // RFC 6455 §4.1: "If the response lacks a |Sec-WebSocket-Accept| header field or the
      // |Sec-WebSocket-Accept| contains a value other than [...] the client MUST _Fail the WebSocket Connection_."
      if (res.statusCode !== 101 || res.headers['sec-websocket-accept'] !== acceptKey(key)) {
        socket.destroy()
        reject(new WebSocketUpgradeError(res.statusCode ?? 0, res.headers, ''))
        return
      }
      resolve({ socket, head, headers: res.headers })
    })
    req.once('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.once('end', () => {
        client.destroy()
        reject(new WebSocketUpgradeError(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8')))
      })
      res.once('error', reject)
    })
    req.once('error', reject)
    req.end()
  })
}
