// Helpers of the permessage-deflate tests: a raw-byte client (its own frame codec, not lib/'s),
// a server factory, waits with deadlines (never sleeps).
import net from 'node:net'
import zlib from 'node:zlib'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocket, type WebSocketPluginOptions } from '../../lib/index.js'
import type { PerMessageDeflate } from '../../lib/connection/deflate.js'
import type { DeflateParams } from '../../lib/protocol/permessage-deflate.js'

export function deadline<T> (promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export async function waitFor (cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Agreed parameters: context takeover both ways, 15-bit windows, unless overridden. */
export const deflateParams = (over: Partial<DeflateParams> = {}): DeflateParams => ({
  serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15, ...over
})

/** PerMessageDeflate's callbacks as promises. */
export function inflate (pmd: PerMessageDeflate, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => pmd.decompress(data, (err, out) => err === null ? resolve(out) : reject(err)))
}
export function deflate (pmd: PerMessageDeflate, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => pmd.compress(data, (err, out) => err === null ? resolve(out) : reject(err)))
}

/** Compress like a permessage-deflate sender (RFC 7692 §7.2.1): sync flush, tail removed. */
export function pmdCompress (data: Buffer | string, options: zlib.ZlibOptions = {}): Buffer {
  const out = zlib.deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { ...options, finishFlush: zlib.constants.Z_SYNC_FLUSH })
  return out.subarray(0, out.length - 4)
}

export function pmdInflate (data: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
}

/** A masked client frame. */
export function frame (opcode: number, payload: Buffer | string = Buffer.alloc(0), options: { fin?: boolean, rsv1?: boolean } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const len = data.length
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + ext + 4)
  head[0] = ((options.fin ?? true) ? 0x80 : 0) | (options.rsv1 === true ? 0x40 : 0) | opcode
  head[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127)
  if (ext === 2) head.writeUInt16BE(len, 2)
  else if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2)
  const mask = [0x37, 0xfa, 0x21, 0x3d]
  head.set(mask, 2 + ext)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = data[i] ^ mask[i & 3]
  return Buffer.concat([head, body])
}

export interface Frame { fin: boolean, rsv: number, opcode: number, payload: Buffer }

export class RawClient {
  readonly socket: net.Socket
  headers: Record<string, string> = {}
  status = 0
  frames: Frame[] = []
  ended = false
  private buf = Buffer.alloc(0)
  private waiters: Array<() => void> = []

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => { this.buf = Buffer.concat([this.buf, chunk]); this.parse(); this.wake() })
    socket.on('close', () => { this.ended = true; this.wake() })
    socket.on('error', () => {})
  }

  private wake (): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  private parse (): void {
    if (this.status === 0) {
      const end = this.buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n')
      this.status = Number(lines[0].split(' ')[1])
      for (const line of lines.slice(1)) {
        const i = line.indexOf(':')
        this.headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
      }
      this.buf = this.buf.subarray(end + 4)
    }
    let o = 0
    const b = this.buf
    while (b.length - o >= 2) {
      let len = b[o + 1] & 0x7f
      let h = 2
      if (len === 126) { if (b.length - o < 4) break; len = b.readUInt16BE(o + 2); h = 4 } else if (len === 127) { if (b.length - o < 10) break; len = Number(b.readBigUInt64BE(o + 2)); h = 10 }
      if (b.length - o < h + len) break
      this.frames.push({ fin: (b[o] & 0x80) !== 0, rsv: (b[o] >> 4) & 7, opcode: b[o] & 0x0f, payload: Buffer.from(b.subarray(o + h, o + h + len)) })
      o += h + len
    }
    this.buf = this.buf.subarray(o)
  }

  async until (cond: () => boolean, what: string): Promise<void> {
    await deadline((async () => {
      while (!cond()) {
        if (this.ended && !cond()) throw new Error(`connection closed before ${what}`)
        await new Promise<void>((resolve) => this.waiters.push(resolve))
      }
    })(), what)
  }

  /** Wait for the n-th frame (0-based) and return it. */
  async frame (n: number): Promise<Frame> {
    await this.until(() => this.frames.length > n, `frame ${n}`)
    return this.frames[n]
  }

  /** Wait for a Close frame and return its status code. */
  async closeCode (): Promise<number | undefined> {
    await this.until(() => this.frames.some((f) => f.opcode === 8), 'a Close frame')
    const f = this.frames.find((f) => f.opcode === 8) as Frame
    return f.payload.length >= 2 ? f.payload.readUInt16BE(0) : undefined
  }

  send (bytes: Buffer): void {
    this.socket.write(bytes)
  }
}

export async function rawConnect (port: number, path: string, extensions?: string): Promise<RawClient> {
  const socket = net.connect(port, '127.0.0.1')
  await deadline(new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) }), 'tcp connect')
  const client = new RawClient(socket)
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
    (extensions === undefined ? '' : `Sec-WebSocket-Extensions: ${extensions}\r\n`) + '\r\n')
  await client.until(() => client.status !== 0, 'the handshake response')
  return client
}

export interface ServerEvent { type: string, data?: string, binary?: boolean, code?: number }

export interface TestServer {
  app: FastifyInstance
  port: number
  /** every server-side WebSocket in order of opening */
  sockets: WebSocket[]
  /** events seen by the /record route, per connection */
  records: ServerEvent[][]
}

/**
 * A server with /echo (echoes each message with its type) and /record (records message, ping,
 * pong and close events in the order the application sees them, echoes too).
 */
export async function startServer (options: WebSocketPluginOptions = {}, setup?: (app: FastifyInstance) => void): Promise<TestServer> {
  const app = Fastify()
  await app.register(websocket, { heartbeatInterval: 0, ...options })
  const sockets: WebSocket[] = []
  const records: ServerEvent[][] = []
  app.ws('/echo', (socket) => {
    sockets.push(socket)
    socket.on('message', (data: Buffer, binary: boolean) => { socket.send(binary ? data : data.toString('utf8')) })
  })
  app.ws('/record', (socket) => {
    sockets.push(socket)
    const rec: ServerEvent[] = []
    records.push(rec)
    socket.on('message', (data: Buffer, binary: boolean) => {
      rec.push({ type: 'message', data: binary ? data.toString('hex') : data.toString('utf8'), binary })
      socket.send(binary ? data : data.toString('utf8'))
    })
    socket.on('ping', (data: Buffer) => rec.push({ type: 'ping', data: data.toString() }))
    socket.on('pong', (data: Buffer) => rec.push({ type: 'pong', data: data.toString() }))
    socket.on('close', (code: number) => rec.push({ type: 'close', code }))
  })
  setup?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, port, sockets, records }
}
