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
 */
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'
import { RawWebSocket } from '../helpers/raw-client.js'

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

export async function echoServer (): Promise<EchoServer> {
  const app = Fastify()
  await app.register(websocket)
  const connections: ServerSide[] = []
  const handler = (socket: WebSocket, request: { raw: { socket: import('node:net').Socket } }): void => {
    const tcp = request.raw.socket
    const before = tcp.bytesRead // the upgrade request (and any head)
    const side: ServerSide = { ws: socket, get bytesIn () { return tcp.bytesRead - before } }
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
      const client = await RawWebSocket.connect(port, path)
      // the handler runs in the same tick as the 101 is written, so the connection is recorded by now
      if (connections.length !== before + 1) throw new Error('server-side connection not recorded')
      return client
    },
    last: () => connections[connections.length - 1]
  }
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
