/**
 * The server under test of the conformance files: a Fastify app with the plugin and echo routes
 * (text back as text, binary as binary) on 127.0.0.1, port 0.
 *
 *   /echo        default options (maxPayload 1 MiB)
 *   /echo-large  maxPayload 16 MiB and maxFragments raised for the 9.* cases
 *   /echo-small  maxPayload 1000, for 1009 from the frame header
 *
 * Each server-side connection is recorded with the bytes its TCP socket has delivered so far,
 * counted by a 'data' listener added after the WebSocket's own: when `bytesIn` reaches n, the
 * WebSocket has already parsed those n bytes. Tests use it to prove the server was still open
 * after a valid prefix, without sleeping.
 */
import { EventEmitter } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'
import { RawWebSocket } from '../helpers/raw-client.js'

export interface ServerSide {
  ws: WebSocket
  bytesIn: number
  events: EventEmitter
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
    const side: ServerSide = { ws: socket, bytesIn: 0, events: new EventEmitter() }
    connections.push(side)
    request.raw.socket.on('data', (chunk: Buffer) => {
      side.bytesIn += chunk.length
      side.events.emit('bytes')
    })
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
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { side.events.off('bytes', check); reject(new Error(`timed out waiting for the server to receive ${n} bytes (got ${side.bytesIn})`)) }, ms)
    function check (): void {
      if (side.bytesIn < n) return
      clearTimeout(timer)
      side.events.off('bytes', check)
      resolve()
    }
    side.events.on('bytes', check)
    check()
  })
}
