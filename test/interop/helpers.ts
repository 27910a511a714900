/**
 * The server of the interop tests: a Fastify app with the plugin, echo routes (one with
 * permessage-deflate) and a subprotocol route (`protocols: ['a', 'b']`), on 127.0.0.1 port 0. Server-side sockets are
 * recorded, with a promise of their 'close' event, so tests can drive and observe both ends.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'

export interface ServerClose { code: number, reason: string, wasClean: boolean }

export interface ServerSocket {
  ws: WebSocket
  closed: Promise<ServerClose>
  pongs: Buffer[]
}

export interface InteropServer {
  app: FastifyInstance
  url: string
  sockets: ServerSocket[]
  /** resolves with the server side of the next connection (or the latest, if already open) */
  nextSocket (): Promise<ServerSocket>
}

export function deadline<T> (promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export async function interopServer (): Promise<InteropServer> {
  const app = Fastify()
  await app.register(websocket, { maxPayload: 16 * 1024 * 1024 })
  const sockets: ServerSocket[] = []
  let waiting: ((s: ServerSocket) => void) | null = null
  const record = (ws: WebSocket): void => {
    const s: ServerSocket = {
      ws,
      pongs: [],
      closed: new Promise((resolve) => {
        ws.once('close', (code: number, reason: Buffer, wasClean: boolean) => resolve({ code, reason: reason.toString(), wasClean }))
      })
    }
    ws.on('pong', (data: Buffer) => s.pongs.push(data))
    sockets.push(s)
    if (waiting !== null) {
      const w = waiting
      waiting = null
      w(s)
    }
  }
  const echo = (ws: WebSocket): void => {
    record(ws)
    ws.on('message', (data: Buffer, isBinary: boolean) => ws.send(isBinary ? data : data.toString('utf8')))
  }
  app.ws('/echo', echo)
  app.ws('/echo-deflate', { perMessageDeflate: true }, echo)
  app.ws('/proto', { protocols: ['a', 'b'] }, (ws) => {
    echo(ws)
    ws.send(`protocol:${ws.protocol}`)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  let taken = 0
  return {
    app,
    url: `ws://127.0.0.1:${port}`,
    sockets,
    nextSocket: () => {
      if (sockets.length > taken) return Promise.resolve(sockets[taken++])
      return deadline(new Promise<ServerSocket>((resolve) => { waiting = (s) => { taken++; resolve(s) } }), 'a server-side connection')
    }
  }
}

/** Sizes across the length encodings of RFC 6455 §5.2, up to 1 MiB. */
export const sizes = [0, 1, 125, 126, 127, 65535, 65536, 1024 * 1024]

export function pattern (n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 29 + 3) & 0xff
  return b
}

export function textOf (n: number): string {
  // multi-byte characters too: 'é' is 2 bytes in UTF-8, '€' 3, '𝄞' 4 (a surrogate pair in JS)
  const alphabet = ['a', 'é', '€', '𝄞', 'z']
  const parts: string[] = []
  for (let i = 0; i < n; i++) parts.push(alphabet[i % alphabet.length])
  return parts.join('')
}
