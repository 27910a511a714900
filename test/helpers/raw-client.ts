/**
 * A small raw-TCP WebSocket client for conformance tests (written for this project from
 * RFC 6455; it shares no code with lib/).
 *
 * - `RawWebSocket.connect()` does the opening handshake (§4.1) with a random key and checks the
 *   101 and its Sec-WebSocket-Accept (§4.2.2).
 * - `encodeFrame()` builds any client frame: masked (§5.3) with a random or given key, any FIN /
 *   RSV / opcode, and optionally a lying length; `send()` / `sendChopped()` write arbitrary
 *   bytes whole or in chops of a given size (each chop is its own write, awaited).
 * - Server frames are decoded as they arrive, independently of lib/, and checked strictly: a
 *   server frame that is masked (§5.1 "A server MUST NOT mask any frames"), has an RSV bit set
 *   (no extension is negotiated here), a reserved opcode, or is a fragmented or oversized
 *   control frame (§5.5) makes every later wait reject.
 * - Waits are event driven and bounded by deadlines; nothing sleeps.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2'
import net from 'node:net'
import type { Duplex } from 'node:stream'

export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export const Op = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const

export interface Frame {
  fin: boolean
  rsv: number
  opcode: number
  payload: Buffer
}

export interface FrameSpec {
  opcode: number
  payload?: Buffer | string
  /** default true */
  fin?: boolean
  /** the three RSV bits as a number 0..7 (4 = RSV1, 2 = RSV2, 1 = RSV3); default 0 */
  rsv?: number
  /** masking key; default a random one; null sends the frame unmasked */
  mask?: Buffer | null
  /** payload length to announce instead of the real one */
  length?: number
}

function lowerCase (headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value
  return out
}

/** Masking keys come from a pool of random bytes, refilled when used up (randomBytes per frame is slow). */
let pool = randomBytes(4096)
let poolOffset = 0
function randomMask (): Buffer {
  if (poolOffset + 4 > pool.length) {
    pool = randomBytes(4096)
    poolOffset = 0
  }
  poolOffset += 4
  return pool.subarray(poolOffset - 4, poolOffset)
}

/** A client frame's bytes (§5.2): header, optional masking key, masked payload, in one buffer. */
export function encodeFrame (spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0))
  const mask = spec.mask === undefined ? randomMask() : spec.mask
  const length = spec.length ?? payload.length
  const extra = length < 126 ? 0 : length < 0x10000 ? 2 : 8
  const headerLength = 2 + extra + (mask === null ? 0 : 4)
  const out = Buffer.allocUnsafe(headerLength + payload.length)
  out[0] = ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0x0f)
  out[1] = (mask === null ? 0 : 0x80) | (extra === 0 ? length : extra === 2 ? 126 : 127)
  if (extra === 2) out.writeUInt16BE(length, 2)
  if (extra === 8) out.writeBigUInt64BE(BigInt(length), 2)
  if (mask === null) {
    payload.copy(out, headerLength)
    return out
  }
  mask.copy(out, 2 + extra)
  // §5.3: octet i of the payload is XORed with octet i MOD 4 of the masking key
  const m0 = mask[0]; const m1 = mask[1]; const m2 = mask[2]; const m3 = mask[3]
  let i = 0
  let o = headerLength
  const n = payload.length
  for (; i + 4 <= n; i += 4, o += 4) {
    out[o] = payload[i] ^ m0
    out[o + 1] = payload[i + 1] ^ m1
    out[o + 2] = payload[i + 2] ^ m2
    out[o + 3] = payload[i + 3] ^ m3
  }
  for (; i < n; i++, o++) out[o] = payload[i] ^ mask[i & 3]
  return out
}

/** The body of a Close frame (§5.5.1): a 2-byte code then a UTF-8 reason. */
export function closeBody (code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason
  const body = Buffer.alloc(2 + r.length)
  body.writeUInt16BE(code, 0)
  r.copy(body, 2)
  return body
}

export const text = (payload: Buffer | string, options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): Buffer => encodeFrame({ opcode: Op.Text, payload, ...options })
export const binary = (payload: Buffer | string, options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): Buffer => encodeFrame({ opcode: Op.Binary, payload, ...options })
export const continuation = (payload: Buffer | string, options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): Buffer => encodeFrame({ opcode: Op.Continuation, payload, ...options })
export const ping = (payload: Buffer | string = '', options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): Buffer => encodeFrame({ opcode: Op.Ping, payload, ...options })
export const pong = (payload: Buffer | string = '', options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): Buffer => encodeFrame({ opcode: Op.Pong, payload, ...options })
export const close = (code?: number, reason: Buffer | string = '', options: Omit<FrameSpec, 'opcode' | 'payload'> = {}): Buffer =>
  encodeFrame({ opcode: Op.Close, payload: code === undefined ? Buffer.alloc(0) : closeBody(code, reason), ...options })

/** Split `bytes` into pieces of `size` bytes (the last may be shorter). */
export function chops (bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, Math.min(i + size, bytes.length)))
  return out
}

/** A readable summary of a server frame; payloads over 256 bytes become length + sha1. */
export type Summary =
  | { op: 'text', data: string | Digest, fin?: false }
  | { op: 'binary', data: string | Digest, fin?: false }
  | { op: 'continuation', data: string | Digest, fin?: false }
  | { op: 'ping' | 'pong', data: string }
  | { op: 'close', code?: number, reason?: string }

export interface Digest { length: number, sha1: string }

const SMALL = 256

export function digest (bytes: Buffer | string): Digest {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
  return { length: b.length, sha1: createHash('sha1').update(b).digest('hex') }
}

/** Text payloads as a string (or digest), binary and control payloads as hex. */
function data (opcode: number, payload: Buffer): string | Digest {
  if (payload.length > SMALL) return digest(payload)
  return opcode === Op.Text ? payload.toString('utf8') : payload.toString('hex')
}

export function summarize (frame: Frame): Summary {
  const fin = frame.fin ? {} : { fin: false as const }
  switch (frame.opcode) {
    case Op.Text: return { op: 'text', data: data(Op.Text, frame.payload), ...fin }
    case Op.Binary: return { op: 'binary', data: data(Op.Binary, frame.payload), ...fin }
    case Op.Continuation: return { op: 'continuation', data: data(Op.Binary, frame.payload), ...fin }
    case Op.Ping: return { op: 'ping', data: frame.payload.toString('hex') }
    case Op.Pong: return { op: 'pong', data: frame.payload.toString('hex') }
    case Op.Close:
      if (frame.payload.length === 0) return { op: 'close' }
      return { op: 'close', code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString('utf8') }
    default: throw new Error(`unexpected opcode ${frame.opcode}`)
  }
}

/** What a test expects, in the same shape as summarize(): */
export const expectText = (s: string | Buffer): Summary => ({ op: 'text', data: Buffer.byteLength(s) > SMALL ? digest(s) : s.toString() })
export const expectBinary = (b: Buffer): Summary => ({ op: 'binary', data: b.length > SMALL ? digest(b) : b.toString('hex') })
export const expectPong = (b: Buffer | string = ''): Summary => ({ op: 'pong', data: Buffer.from(b).toString('hex') })
export const expectPing = (b: Buffer | string = ''): Summary => ({ op: 'ping', data: Buffer.from(b).toString('hex') })
export const expectClose = (code?: number, reason = ''): Summary => code === undefined ? { op: 'close' } : { op: 'close', code, reason }

function deadline<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export interface ConnectOptions {
  /** extra request header lines, e.g. { 'Sec-WebSocket-Protocol': 'a, b' } */
  headers?: Record<string, string>
  /** ms for the handshake; default 5000 */
  timeout?: number
}

export class RawWebSocket {
  /** the TCP socket (over HTTP/2: the session's) */
  readonly socket: net.Socket
  /** what the WebSocket runs over: the TCP socket (HTTP/1.1 upgrade) or an HTTP/2 stream (RFC 8441) */
  readonly transport: Duplex
  /** the response head of the opening handshake */
  status = 0
  headers: Record<string, string> = {}
  /** decoded server frames not yet taken by nextFrame() */
  private frames: Frame[] = []
  /** every server frame ever received, in order */
  readonly history: Frame[] = []
  /** received bytes not decoded yet, joined only once a whole frame is there (no quadratic copying) */
  private pieces: Buffer[] = []
  private piecesLength = 0
  /** bytes needed before decoding is worth trying again */
  private needed = 2
  private handshakeDone = false
  /** the server sent FIN (or the connection was reset) */
  ended = false
  /** the socket is fully closed */
  closed = false
  /** a strictness violation by the server, if any */
  violation: Error | null = null
  /** set on an ECONNRESET / EPIPE */
  transportError: Error | null = null
  private waiters: Array<() => void> = []

  private constructor (socket: Duplex, tcp?: net.Socket) {
    this.transport = socket
    this.socket = tcp ?? socket as net.Socket
    if (tcp === undefined) this.socket.setNoDelay(true)
    socket.on('data', this.onData)
    socket.on('end', () => { this.ended = true; this.wake() })
    socket.on('close', () => { this.ended = true; this.closed = true; this.wake() })
    // a reset after the server closed is not a test failure by itself; tests check frames and end
    socket.on('error', (err) => { this.transportError = err; this.wake() })
  }

  static async connect (port: number, path = '/', options: ConnectOptions = {}): Promise<RawWebSocket> {
    const socket = net.connect({ host: '127.0.0.1', port })
    await deadline(once(socket, 'connect'), options.timeout ?? 5000, 'TCP connect')
    const client = new RawWebSocket(socket)
    const key = randomBytes(16).toString('base64')
    let head = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`
    for (const [name, value] of Object.entries(options.headers ?? {})) head += `${name}: ${value}\r\n`
    socket.write(head + '\r\n')
    await client.until(() => client.handshakeDone, options.timeout ?? 5000, 'the 101 response')
    if (client.status !== 101) throw new Error(`expected 101, got ${client.status}`)
    // §4.2.2: the accept value is base64(SHA-1(key + GUID))
    const accept = createHash('sha1').update(key + GUID).digest('base64')
    if (client.headers['sec-websocket-accept'] !== accept) throw new Error('wrong Sec-WebSocket-Accept')
    if (client.headers.upgrade?.toLowerCase() !== 'websocket') throw new Error('missing Upgrade: websocket')
    return client
  }

  /**
   * RFC 8441 §5: the opening handshake as an extended CONNECT on a new stream of `session`
   * (`:protocol` websocket, no key); the response is `:status` 200 and no Sec-WebSocket-Accept.
   * The WebSocket then runs over the stream: its END_STREAM is the "TCP close" of the other methods.
   */
  static async connectH2 (session: ClientHttp2Session, path = '/', options: ConnectOptions = {}): Promise<RawWebSocket> {
    const stream = session.request({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': session.encrypted === true ? 'https' : 'http',
      ':path': path,
      'sec-websocket-version': '13',
      ...lowerCase(options.headers ?? {})
    }, { endStream: false })
    const client = new RawWebSocket(stream, session.socket as net.Socket)
    // the server's END_STREAM is answered with ours, as a TCP socket without allowHalfOpen answers a FIN
    stream.on('end', () => { stream.end() })
    const response = await deadline(once(stream, 'response') as Promise<[IncomingHttpHeaders]>, options.timeout ?? 5000, 'the CONNECT response')
    client.status = Number(response[0][':status'])
    for (const [name, value] of Object.entries(response[0])) if (!name.startsWith(':')) client.headers[name] = String(value)
    client.handshakeDone = true
    if (client.status !== 200) throw new Error(`expected 200, got ${client.status}`)
    if (client.headers['sec-websocket-accept'] !== undefined) throw new Error('Sec-WebSocket-Accept on an extended CONNECT (RFC 8441 §5)')
    return client
  }

  /** The HTTP/2 stream under this client, if it runs over one. */
  get stream (): ClientHttp2Stream | undefined {
    return this.transport === this.socket ? undefined : this.transport as ClientHttp2Stream
  }

  private readonly onData = (chunk: Buffer): void => {
    this.pieces.push(chunk)
    this.piecesLength += chunk.length
    if (!this.handshakeDone) {
      const joined = Buffer.concat(this.pieces)
      this.pieces = [joined]
      const end = joined.indexOf('\r\n\r\n')
      if (end < 0) return
      const lines = joined.subarray(0, end).toString('latin1').split('\r\n')
      this.status = Number(lines[0].split(' ')[1])
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':')
        this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      this.pieces = [joined.subarray(end + 4)]
      this.piecesLength = joined.length - end - 4
      this.handshakeDone = true
    }
    if (this.piecesLength >= this.needed) this.decode()
    this.wake()
  }

  private decode (): void {
    let o = 0
    const b = this.pieces.length === 1 ? this.pieces[0] : Buffer.concat(this.pieces)
    this.needed = 2
    while (b.length - o >= 2 && this.violation === null) {
      const b0 = b[o]
      const b1 = b[o + 1]
      let length = b1 & 0x7f
      let size = 2
      if (length === 126) {
        this.needed = 4
        if (b.length - o < 4) break
        length = b.readUInt16BE(o + 2)
        size = 4
      } else if (length === 127) {
        this.needed = 10
        if (b.length - o < 10) break
        length = Number(b.readBigUInt64BE(o + 2))
        size = 10
      }
      const masked = (b1 & 0x80) !== 0
      if (masked) size += 4
      this.needed = size + length
      if (b.length - o < size + length) break
      this.needed = 2
      const frame: Frame = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, payload: Buffer.from(b.subarray(o + size, o + size + length)) }
      o += size + length
      if (masked) this.violation = new Error('server frame is masked (§5.1)')
      else if (frame.rsv !== 0) this.violation = new Error(`server frame has RSV bits ${frame.rsv}`)
      else if ((frame.opcode > 2 && frame.opcode < 8) || frame.opcode > 10) this.violation = new Error(`server frame has reserved opcode ${frame.opcode}`)
      else if (frame.opcode >= 8 && (!frame.fin || length > 125)) this.violation = new Error('server control frame fragmented or over 125 bytes (§5.5)')
      this.frames.push(frame)
      this.history.push(frame)
    }
    const rest = b.subarray(o)
    this.pieces = rest.length === 0 ? [] : [rest]
    this.piecesLength = rest.length
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  /** Wait until `test()` holds, re-checked whenever something arrives; reject after `ms`. */
  async until (test: () => boolean, ms: number, what: string): Promise<void> {
    const start = Date.now()
    while (true) {
      if (this.violation !== null) throw this.violation
      if (test()) return
      if (this.ended) throw new Error(`the connection ended while waiting for ${what}`)
      const left = ms - (Date.now() - start)
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
      await deadline(new Promise<void>((resolve) => this.waiters.push(resolve)), left, what)
    }
  }

  /** Write bytes; resolves once handed to the OS. Errors (a reset by a closed server) are swallowed. */
  send (...pieces: Buffer[]): Promise<void> {
    const bytes = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces)
    if (this.transport.destroyed || this.transport.writableEnded) return Promise.resolve()
    return new Promise((resolve) => this.transport.write(bytes, () => resolve()))
  }

  /** Write `bytes` in chops of `size` bytes, each its own write, one after the other. */
  async sendChopped (bytes: Buffer, size: number): Promise<void> {
    for (const piece of chops(bytes, size)) await this.send(piece)
  }

  /** The next server frame. */
  async nextFrame (ms = 5000): Promise<Frame> {
    await this.until(() => this.frames.length > 0, ms, 'a server frame')
    return this.frames.shift() as Frame
  }

  /** Summaries of the next `count` server frames. */
  async next (count = 1, ms = 5000): Promise<Summary[]> {
    const out: Summary[] = []
    for (let i = 0; i < count; i++) out.push(summarize(await this.nextFrame(ms)))
    return out
  }

  /** Frames not yet taken. */
  pending (): Summary[] {
    return this.frames.map(summarize)
  }

  /**
   * Wait until the server has closed TCP (sent FIN or reset) and return every frame received
   * and not yet taken. The client never closes TCP first, so an end here is the server's doing.
   */
  async rest (ms = 5000): Promise<Summary[]> {
    if (this.violation !== null) throw this.violation
    if (!this.ended) await deadline(new Promise<void>((resolve) => { const check = (): void => { if (this.ended || this.violation !== null) resolve(); else this.waiters.push(check) }; check() }), ms, 'the server to close TCP')
    if (this.violation !== null) throw this.violation
    const out = this.frames.map(summarize)
    this.frames = []
    return out
  }

  /** Start the closing handshake (Close with `code`), then return the rest until the server's TCP close. */
  async closeAndRest (code = 1000, reason = '', ms = 5000): Promise<Summary[]> {
    await this.send(close(code, reason))
    return this.rest(ms)
  }

  /** Wait until the socket is fully closed. */
  async waitClosed (ms = 5000): Promise<void> {
    if (this.closed) return
    await deadline(once(this.transport, 'close'), ms, 'the socket to close')
  }

  destroy (): void {
    this.transport.destroy()
  }
}
