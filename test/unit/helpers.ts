/**
 * Test helpers for the Sans-I/O core: a frame builder and an output decoder written from the
 * RFC 6455 §5.2 diagram directly (independent of lib/protocol/frame.ts), chunkings of a byte
 * vector, and a seeded PRNG. Not a test file (tap only runs *.test.ts).
 */
import { WebSocketProtocol, type ProtocolEvent, type ProtocolOptions } from '../../lib/protocol/protocol.js'

/** mulberry32: small seeded PRNG, returns a function giving floats in [0, 1). */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** integer in [0, n) */
export function randInt (rand: () => number, n: number): number {
  return Math.floor(rand() * n)
}

export function randomBytes (rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = randInt(rand, 256)
  return b
}

export interface FrameSpec {
  fin?: boolean
  /** RSV1..3 as a 3-bit number (RSV1 = 4) */
  rsv?: number
  opcode: number
  payload?: Uint8Array | string
  /** masking key; default: a fixed key. `false`: unmasked */
  mask?: Uint8Array | false
  /** force the length encoding: 7-bit, 16-bit or 64-bit (non-minimal encodings allowed) */
  lengthBytes?: 0 | 2 | 8
  /** override the 64-bit length field (for MSB tests) */
  rawLength?: bigint
}

export const KEY = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d])

/** Build one frame byte by byte, as a peer would send it. */
export function frame (spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : Buffer.from(spec.payload ?? [])
  const mask = spec.mask === undefined ? KEY : spec.mask
  const len = payload.length
  const lengthBytes = spec.lengthBytes ?? (len < 126 ? 0 : len < 65536 ? 2 : 8)
  const head: number[] = [((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode]
  const maskBit = mask === false ? 0 : 0x80
  if (lengthBytes === 0) {
    head.push(maskBit | len)
  } else if (lengthBytes === 2) {
    head.push(maskBit | 126, len >> 8, len & 0xff)
  } else {
    head.push(maskBit | 127)
    const big = spec.rawLength ?? BigInt(len)
    for (let i = 7; i >= 0; i--) head.push(Number((big >> BigInt(i * 8)) & 0xffn))
  }
  if (mask !== false) head.push(mask[0], mask[1], mask[2], mask[3])
  const body = Buffer.from(payload)
  if (mask !== false) for (let i = 0; i < body.length; i++) body[i] ^= mask[i % 4]
  return Buffer.concat([Buffer.from(head), body])
}

export function closeBody (code: number, reason: string | Uint8Array = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason) : Buffer.from(reason)
  const b = Buffer.alloc(2 + r.length)
  b.writeUInt16BE(code, 0)
  r.copy(b, 2)
  return b
}

/** A frame as decoded from the server's output. */
export interface OutFrame {
  fin: boolean
  rsv: number
  opcode: number
  masked: boolean
  payload: Buffer
}

/** Decode a complete byte stream of frames (throws on a truncated or odd stream). */
export function decodeFrames (bytes: Buffer | Buffer[]): OutFrame[] {
  const b = Array.isArray(bytes) ? Buffer.concat(bytes) : bytes
  const out: OutFrame[] = []
  let o = 0
  while (o < b.length) {
    if (b.length - o < 2) throw new Error('truncated header')
    const b0 = b[o]; const b1 = b[o + 1]
    let len = b1 & 0x7f
    o += 2
    if (len === 126) { len = b.readUInt16BE(o); o += 2 } else if (len === 127) {
      const big = b.readBigUInt64BE(o)
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('huge length')
      len = Number(big); o += 8
    }
    const masked = (b1 & 0x80) !== 0
    let key: Buffer | null = null
    if (masked) { key = b.subarray(o, o + 4); o += 4 }
    if (b.length - o < len) throw new Error('truncated payload')
    const payload = Buffer.from(b.subarray(o, o + len))
    if (key !== null) for (let i = 0; i < len; i++) payload[i] ^= key[i % 4]
    o += len
    out.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload })
  }
  return out
}

/** Split points -> chunks (fresh copies, since the core unmasks in place and owns its input). */
export function cut (input: Uint8Array, points: number[]): Buffer[] {
  const out: Buffer[] = []
  let prev = 0
  for (const p of points) {
    out.push(Buffer.from(input.subarray(prev, p)))
    prev = p
  }
  out.push(Buffer.from(input.subarray(prev)))
  return out
}

export interface Chunking {
  name: string
  chunks: Buffer[]
}

/**
 * Every way the tests feed a vector: whole, byte by byte, at every single split point, and at
 * `randomCount` random multi-splits. Each chunking holds fresh copies.
 */
export function * chunkings (input: Uint8Array, options: { seed?: number, randomCount?: number, everySplit?: boolean } = {}): Generator<Chunking> {
  yield { name: 'whole', chunks: [Buffer.from(input)] }
  const bytes: number[] = []
  for (let i = 1; i < input.length; i++) bytes.push(i)
  yield { name: 'byte by byte', chunks: cut(input, bytes) }
  if (options.everySplit ?? true) {
    for (let i = 1; i < input.length; i++) yield { name: `split at ${i}`, chunks: cut(input, [i]) }
  }
  const rand = prng(options.seed ?? 42)
  const count = options.randomCount ?? 10
  for (let r = 0; r < count; r++) {
    const points: number[] = []
    for (let i = 1; i < input.length; i++) if (rand() < 0.1) points.push(i)
    yield { name: `random splits #${r}`, chunks: cut(input, points) }
  }
}

export interface Run {
  events: ProtocolEvent[]
  output: OutFrame[]
  proto: WebSocketProtocol
}

/** Feed chunks to a fresh core (server role by default), draining events after each chunk. */
export function run (chunks: Buffer[], options: ProtocolOptions = {}): Run {
  const proto = new WebSocketProtocol(options)
  const events: ProtocolEvent[] = []
  const out: Buffer[] = []
  for (const c of chunks) {
    proto.receive(c)
    events.push(...proto.takeEvents())
    // copy: slab bytes are never rewritten, but be independent of that promise
    for (const b of proto.takeOutput()) out.push(Buffer.from(b))
  }
  return { events, output: decodeFrames(out), proto }
}

/** Events as plain comparable values (Buffers to hex, errors to their codes). */
export function summarize (events: ProtocolEvent[]): unknown[] {
  return events.map((e) => {
    switch (e.type) {
      case 'message': return { type: 'message', binary: e.binary, compressed: e.compressed, data: e.data.toString('hex') }
      case 'ping': return { type: 'ping', data: e.data.toString('hex') }
      case 'pong': return { type: 'pong', data: e.data.toString('hex') }
      case 'close': return { type: 'close', code: e.code, reason: e.reason }
      case 'fail': return { type: 'fail', code: e.error.code, closeCode: e.error.closeCode }
      case 'end': return { type: 'end' }
    }
    return e
  })
}

export function summarizeOutput (frames: OutFrame[]): unknown[] {
  return frames.map((f) => ({ fin: f.fin, rsv: f.rsv, opcode: f.opcode, masked: f.masked, payload: f.payload.toString('hex') }))
}

/** An expected output frame of the server role (unmasked, FIN set). */
export function outFrame (opcode: number, payload: Uint8Array | string = ''): unknown {
  const p = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload)
  return { fin: true, rsv: 0, opcode, masked: false, payload: p.toString('hex') }
}

export interface Expectation {
  events: unknown[]
  output: unknown[]
}

/**
 * Feed `input` in every chunking of `chunkings()` and compare the summarized events and output
 * frames with `expected`. Returns the list of mismatches (empty when all chunkings agree).
 */
export function checkChunkings (input: Uint8Array, expected: Expectation, options: ProtocolOptions = {},
  chunkOptions: { seed?: number, randomCount?: number, everySplit?: boolean } = {}): string[] {
  const problems: string[] = []
  const want = JSON.stringify(expected)
  for (const { name, chunks } of chunkings(input, chunkOptions)) {
    const r = run(chunks, options)
    const got = JSON.stringify({ events: summarize(r.events), output: summarizeOutput(r.output) })
    if (got !== want) {
      problems.push(`${name}: ${got.length > 600 ? got.slice(0, 600) + '...' : got}`)
      if (problems.length >= 3) break
    }
  }
  return problems
}
