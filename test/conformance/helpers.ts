/**
 * The server under test of the conformance files: a Fastify app with the plugin and echo routes
 * (text back as text, binary as binary) on 127.0.0.1, port 0.
 *
 *   /echo        default options (maxPayload 1 MiB)
 *   /echo-large  maxPayload 16 MiB and maxFragments raised for the 9.* cases
 *   /echo-small  maxPayload 1000, for 1009 from the frame header
 *
 * Each server-side connection is recorded with the bytes its TCP socket has read so far
 * (`socket.bytesRead`, which counts reads into the shared read buffer too: the socket then emits
 * no 'data' events). Reads are parsed in the callback that delivers them, so once a later
 * macrotask sees `bytesIn` at n, the WebSocket has parsed those n bytes. Tests use it to prove
 * the server was still open after a valid prefix, without sleeping.
 *
 * Transport switch: with CONFORMANCE_TRANSPORT=h2c the same cases run over HTTP/2 (RFC 8441): the
 * app is an `http2: true` server (cleartext, prior knowledge), each client opens its own HTTP/2
 * session and one extended CONNECT stream, and `bytesIn` counts the bytes of that stream.
 */
import { once } from 'node:events'
import http2, { type ClientHttp2Session, type Http2ServerRequest } from 'node:http2'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'
import { RawWebSocket } from '../helpers/raw-client.js'

export type Transport = 'http1' | 'h2c'

/** The transport of the conformance run: HTTP/1.1 Upgrade unless CONFORMANCE_TRANSPORT says h2c. */
export function conformanceTransport (): Transport {
  return process.env.CONFORMANCE_TRANSPORT === 'h2c' ? 'h2c' : 'http1'
}

export interface ServerSide {
  ws: WebSocket
  readonly bytesIn: number
}

export interface EchoServer {
  app: FastifyInstance
  port: number
  connections: ServerSide[]
  connect (path?: string): Promise<RawWebSocket>
  /** the server side of the connection opened last */
  last (): ServerSide
}

export const MiB = 1024 * 1024

/** Bytes the WebSocket's own transport has read: TCP bytes after the upgrade request, or the HTTP/2 stream's DATA. */
function bytesInCounter (raw: object): () => number {
  if (raw instanceof http2.Http2ServerRequest) {
    const stream = (raw as Http2ServerRequest).stream
    let bytes = 0
    stream.on('data', (chunk: Buffer) => { bytes += chunk.length })
    return () => bytes
  }
  const tcp = (raw as { socket: import('node:net').Socket }).socket
  const before = tcp.bytesRead // the upgrade request (and any head)
  return () => tcp.bytesRead - before
}

export async function echoServer (transport: Transport = conformanceTransport()): Promise<EchoServer> {
  const app = (transport === 'h2c' ? Fastify({ http2: true }) : Fastify()) as unknown as FastifyInstance
  await app.register(websocket)
  const sessions = new Set<ClientHttp2Session>()
  // the clients' HTTP/2 sessions end with the server (their streams are closed by then)
  app.addHook('onClose', (_app, done) => { for (const session of sessions) session.close(); done() })
  const connections: ServerSide[] = []
  const handler = (socket: WebSocket, request: { raw: object }): void => {
    const bytesIn = bytesInCounter(request.raw)
    const side: ServerSide = { ws: socket, get bytesIn () { return bytesIn() } }
    connections.push(side)
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      socket.send(isBinary ? data : data.toString('utf8'))
    })
  }
  app.ws('/echo', handler)
  app.ws('/echo-large', { maxPayload: 16 * MiB, maxFragments: 1 << 20 }, handler)
  app.ws('/echo-small', { maxPayload: 1000 }, handler)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return {
    app,
    port,
    connections,
    connect: async (path = '/echo') => {
      const before = connections.length
      const client = transport === 'h2c' ? await connectH2(port, path, sessions) : await RawWebSocket.connect(port, path)
      // the handler runs in the same tick as the 101 is written, so the connection is recorded by now
      if (connections.length !== before + 1) throw new Error('server-side connection not recorded')
      return client
    },
    last: () => connections[connections.length - 1]
  }
}

async function connectH2 (port: number, path: string, sessions: Set<ClientHttp2Session>): Promise<RawWebSocket> {
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  sessions.add(session)
  session.on('close', () => sessions.delete(session))
  await once(session, 'remoteSettings')
  const client = await RawWebSocket.connectH2(session, path)
  // one stream per session here: the session ends with its WebSocket
  client.transport.on('close', () => { session.close() })
  return client
}

/** Wait until the server side has received at least `n` bytes after the handshake. */
export function serverReceived (side: ServerSide, n: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  return new Promise((resolve, reject) => {
    function check (): void {
      if (side.bytesIn >= n) resolve()
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for the server to receive ${n} bytes (got ${side.bytesIn})`))
      else setTimeout(check, 1)
    }
    check()
  })
}
