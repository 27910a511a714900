// Raw-byte tools for the hostile-input tests: a client that speaks bytes, an independent frame
// decoder (not the library's parser), a Fastify log capture, and event waits with deadlines.
import { once } from 'node:events'
import type { ServerOptions } from 'node:http'
import net from 'node:net'
import { Duplex, Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import websocket, { WebSocket } from '../../lib/index.js'
import type { WebSocketPluginOptions } from '../../lib/index.js'

export const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
export const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='

/** Reject after `ms` unless `promise` settles first. */
export function deadline<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

/** A client frame (masked, with a fixed mask unless given). */
export function clientFrame (opcode: number, payload: Buffer | string = Buffer.alloc(0), options: { fin?: boolean, rsv?: number, mask?: Buffer | null } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const fin = options.fin ?? true
  const mask = options.mask === undefined ? Buffer.from([0x12, 0x34, 0x56, 0x78]) : options.mask
  const len = data.length
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + ext + (mask === null ? 0 : 4))
  head[0] = (fin ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode
  head[1] = (mask === null ? 0 : 0x80) | (ext === 0 ? len : ext === 2 ? 126 : 127)
  if (ext === 2) head.writeUInt16BE(len, 2)
  else if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2)
  if (mask === null) return Buffer.concat([head, data])
  mask.copy(head, 2 + ext)
  const body = Buffer.alloc(len)
  for (let i = 0; i < len; i++) body[i] = data[i] ^ mask[i & 3]
  return Buffer.concat([head, body])
}

export interface ServerFrame { fin: boolean, rsv: number, opcode: number, masked: boolean, payload: Buffer }

/**
 * Decode server frames from raw bytes, independently of lib/. Returns the frames and the number
 * of bytes consumed (a trailing partial frame is left).
 */
export function decodeFrames (bytes: Buffer): { frames: ServerFrame[], used: number } {
  const frames: ServerFrame[] = []
  let o = 0
  while (bytes.length - o >= 2) {
    const b0 = bytes[o]; const b1 = bytes[o + 1]
    let len = b1 & 0x7f
    let h = 2
    if (len === 126) { if (bytes.length - o < 4) break; len = bytes.readUInt16BE(o + 2); h = 4 }
    else if (len === 127) { if (bytes.length - o < 10) break; len = Number(bytes.readBigUInt64BE(o + 2)); h = 10 }
    const masked = (b1 & 0x80) !== 0
    if (masked) h += 4
    if (bytes.length - o < h + len) break
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload: Buffer.from(bytes.subarray(o + h, o + h + len)) })
    o += h + len
  }
  return { frames, used: o }
}

export function closeCodeOf (frame: ServerFrame): number | undefined {
  return frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined
}

export function upgradeRequest (path: string, headers: Record<string, string> = {}, extraLines: string[] = []): string {
  const base: Record<string, string> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...headers
  }
  let head = `GET ${path} HTTP/1.1\r\n`
  for (const line of extraLines) head += line + '\r\n'
  for (const [name, value] of Object.entries(base)) if (value !== '') head += `${name}: ${value}\r\n`
  return head + '\r\n'
}

/** A raw TCP client: everything the server sends is collected in `received`. */
export class RawClient {
  readonly socket: net.Socket
  private chunks: Buffer[] = []
  private joined: Buffer | null = Buffer.alloc(0)
  /** every byte the server sent so far (joined lazily: appending stays linear) */
  get received (): Buffer {
    if (this.joined === null) this.joined = Buffer.concat(this.chunks)
    return this.joined
  }

  /** how many bytes arrived (cheap: no join) */
  receivedLength = 0
  ended = false
  closed = false
  /** the stream starts with an HTTP response head (false for tcpPair) */
  http = true
  private waiters: Array<() => void> = []

  constructor (socket: net.Socket) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      if (this.joined !== null) this.chunks = [this.joined]
      this.chunks.push(chunk)
      this.joined = null
      this.receivedLength += chunk.length
      this.wake()
    })
    socket.on('end', () => { this.ended = true; this.wake() })
    socket.on('close', () => { this.closed = true; this.wake() })
    socket.on('error', () => { /* resets are expected in these tests */ })
  }

  static async connect (port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port })
    await once(socket, 'connect')
    return new RawClient(socket)
  }

  private wake (): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Wait until `test()` holds (re-checked on every arrival), or fail after `ms`. */
  async until (test: () => boolean, ms: number, what: string): Promise<void> {
    const start = Date.now()
    while (!test()) {
      if (this.closed && !test()) throw new Error(`connection closed while waiting for ${what}`)
      const left = ms - (Date.now() - start)
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
      await deadline(new Promise<void>((resolve) => this.waiters.push(resolve)), left, what)
    }
  }

  async waitClosed (ms = 5000): Promise<void> {
    if (this.closed) return
    await deadline(once(this.socket, 'close'), ms, 'the server to close TCP')
  }

  headEnd (): number {
    return this.received.indexOf('\r\n\r\n')
  }

  /** Wait for the HTTP response head; returns the status and the head text. */
  async response (ms = 5000): Promise<{ status: number, head: string }> {
    await this.until(() => this.headEnd() >= 0 || this.ended, ms, 'an HTTP response')
    const end = this.headEnd()
    const head = this.received.subarray(0, end < 0 ? this.received.length : end).toString('latin1')
    return { status: Number(head.split(' ')[1]), head }
  }

  /** Bytes after the HTTP response head. */
  body (): Buffer {
    if (!this.http) return this.received
    const end = this.headEnd()
    return end < 0 ? Buffer.alloc(0) : this.received.subarray(end + 4)
  }

  frames (): ServerFrame[] {
    return decodeFrames(this.body()).frames
  }

  async waitFrames (n: number, ms = 5000): Promise<ServerFrame[]> {
    await this.until(() => this.frames().length >= n, ms, `${n} frame(s)`)
    return this.frames()
  }

  write (bytes: Buffer | string): void {
    this.socket.write(bytes)
  }
}

/** Open a WebSocket with a raw client and return it once the 101 arrived. */
export async function rawWebSocket (port: number, path: string, headers: Record<string, string> = {}): Promise<RawClient> {
  const client = await RawClient.connect(port)
  client.write(upgradeRequest(path, headers))
  const { status } = await client.response()
  if (status !== 101) throw new Error(`expected 101, got ${status}`)
  return client
}

/** Log records of a Fastify instance, level >= 50 being error/fatal. */
export function logCapture () {
  const records: Array<{ level: number, msg: string, [k: string]: unknown }> = []
  const stream = new Writable({
    write (chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') records.push(JSON.parse(line))
      cb()
    }
  })
  return { records, stream, errors: () => records.filter((r) => r.level >= 50) }
}

/** A Fastify app with the plugin and a log capture, listening on 127.0.0.1:0. */
export async function server (options: WebSocketPluginOptions, routes: (app: FastifyInstance) => void, fastifyOptions: FastifyServerOptions & { http?: ServerOptions } = {}): Promise<{ app: FastifyInstance, port: number, log: ReturnType<typeof logCapture> }> {
  const log = logCapture()
  const app = Fastify({ ...fastifyOptions, logger: { level: 'debug', stream: log.stream } })
  await app.register(websocket, options)
  routes(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as net.AddressInfo
  return { app, port, log }
}

/** An echo round trip with a fresh raw client: proves the server still serves. */
export async function assertServes (port: number, path = '/echo'): Promise<string> {
  const client = await rawWebSocket(port, path)
  client.write(clientFrame(0x1, 'still alive'))
  const [frame] = await client.waitFrames(1)
  client.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])))
  await client.waitClosed()
  return frame.payload.toString()
}

/**
 * A Duplex whose writes complete only when `release()` is called: the transport of a peer that
 * does not read. Everything written is kept in `written`.
 */
export class StalledDuplex extends Duplex {
  written: Buffer[] = []
  private pending: Array<() => void> = []
  private flowing = false
  constructor () {
    super({ highWaterMark: 16 * 1024 })
  }

  override _read (): void {}
  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written.push(chunk)
    if (this.flowing) process.nextTick(cb)
    else this.pending.push(() => cb())
  }

  override _final (cb: () => void): void { cb() }

  /** The peer starts reading: every held and later write completes. */
  release (): void {
    this.flowing = true
    const p = this.pending
    this.pending = []
    for (const f of p) f()
  }

  bytes (): Buffer {
    return Buffer.concat(this.written)
  }
}

/**
 * A library WebSocket on the accepted side of a real TCP connection, and a RawClient on the
 * other (no HTTP: the WebSocket starts open, as after a 101).
 */
export async function tcpPair (options: ConstructorParameters<typeof WebSocket>[1]): Promise<{ ws: WebSocket, client: RawClient, serverSocket: net.Socket, close: () => Promise<void> }> {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>
  const client = await RawClient.connect((srv.address() as net.AddressInfo).port)
  const [serverSocket] = await accepted
  client.http = false
  const ws = new WebSocket(serverSocket, options)
  return {
    ws,
    client,
    serverSocket,
    close: async () => {
      client.socket.destroy()
      serverSocket.destroy()
      await new Promise<void>((resolve) => srv.close(() => resolve()))
    }
  }
}
