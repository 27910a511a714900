/**
 * Frame writer: turns outgoing frames into as few buffers as possible.
 *
 * Buffer ownership (this sets the speed ceiling, so it is decided here):
 * - Frames with a payload up to SMALL_FRAME bytes are encoded, header and payload together, into a
 *   shared slab. Consecutive frames of one connection land next to each other in the slab, so a
 *   burst of small frames (say the echoes produced by one TCP read) leaves as ONE buffer and one
 *   write system call. Bytes handed out are never rewritten; a full slab is replaced, and the old
 *   one lives as long as a pending write references it.
 * - A larger payload is not copied: its header goes to the slab and the payload buffer itself is
 *   queued (the caller must not modify it until it is written). Large strings are encoded once.
 * - In the client role every payload is masked into fresh bytes (RFC 6455 §5.3), never in place.
 */
import { randomFillSync } from 'node:crypto'
import { encodeHeader, headerSize } from './frame.js'
import { unmaskInPlace } from './mask.js'

const SLAB_SIZE = 64 * 1024
export const SMALL_FRAME = 16 * 1024
/** bytes a string of `n` UTF-16 code units can take in UTF-8 */
const MAX_UTF8_PER_UNIT = 3

let slab = Buffer.allocUnsafeSlow(SLAB_SIZE)
let slabOffset = 0

function ensureSlab (bytes: number): void {
  if (SLAB_SIZE - slabOffset < bytes) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE)
    slabOffset = 0
  }
}

const randomPool = Buffer.allocUnsafe(4096)
let randomOffset = randomPool.length

function nextMask (): Uint8Array {
  if (randomOffset + 4 > randomPool.length) {
    randomFillSync(randomPool)
    randomOffset = 0
  }
  const mask = randomPool.subarray(randomOffset, randomOffset + 4)
  randomOffset += 4
  return mask
}

/** what take() returns when nothing is queued (frozen: shared by every writer) */
export const NOTHING: Buffer[] = Object.freeze([]) as unknown as Buffer[]

export interface FrameOptions {
  fin: boolean
  /** RSV bits, RSV1 = 4 (permessage-deflate's "compressed") */
  rsv: number
}

/** The outgoing byte queue of one connection. */
export class FrameWriter {
  /** client role: frames are masked (settable so that an idle writer can be reused) */
  mask: boolean
  /** NOTHING (shared) while empty: an idle connection has no array of its own */
  private chunks: Buffer[] = NOTHING
  /** the current run of this writer's bytes in the slab: [runStart, runEnd) of runSlab */
  private runSlab: Buffer | null = null
  private runStart = 0
  private runEnd = 0
  /** bytes queued and not yet taken */
  pendingBytes = 0

  constructor (options: { mask: boolean }) {
    this.mask = options.mask
  }

  /** Reserve `bytes` contiguous slab bytes after this writer's current run where possible. */
  private reserve (bytes: number): number {
    ensureSlab(bytes)
    const start = slabOffset
    if (this.runSlab !== slab || this.runEnd !== start) {
      this.closeRun()
      this.runSlab = slab
      this.runStart = start
    }
    slabOffset += bytes
    this.runEnd = slabOffset
    this.pendingBytes += bytes
    return start
  }

  private closeRun (): void {
    if (this.runSlab !== null && this.runEnd > this.runStart) {
      this.push(this.runSlab.subarray(this.runStart, this.runEnd))
    }
    this.runSlab = null
    this.runStart = this.runEnd = 0
  }

  /** Queue one frame whose payload is bytes. */
  frame (opcode: number, payload: Uint8Array, options: FrameOptions): void {
    const length = payload.length
    const mask = this.mask ? nextMask() : undefined
    const hsize = headerSize(length, this.mask)
    const header = { fin: options.fin, rsv: options.rsv, opcode, payloadLength: length, mask }
    if (length <= SMALL_FRAME) {
      const start = this.reserve(hsize + length)
      const o = encodeHeader(slab, start, header)
      slab.set(payload, o)
      if (mask !== undefined) unmaskInPlace(slab, o, length, mask, 0, 0)
      return
    }
    const start = this.reserve(hsize)
    encodeHeader(slab, start, header)
    this.closeRun()
    let body: Buffer
    if (mask !== undefined) {
      body = Buffer.allocUnsafe(length)
      body.set(payload)
      unmaskInPlace(body, 0, length, mask, 0, 0)
    } else {
      body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, length)
    }
    this.push(body)
    this.pendingBytes += length
  }

  /** Queue one frame whose payload is a string, encoded as UTF-8 once, straight into place. */
  textFrame (opcode: number, text: string, options: FrameOptions): void {
    const units = text.length
    // with at most 41 code units the UTF-8 length is below 126: a 2-byte header for sure
    if (units * MAX_UTF8_PER_UNIT < 126) {
      const hsize = this.mask ? 6 : 2
      ensureSlab(hsize + units * MAX_UTF8_PER_UNIT)
      const start = this.reserve(0)
      const length = slab.write(text, start + hsize)
      const mask = this.mask ? nextMask() : undefined
      encodeHeader(slab, start, { fin: options.fin, rsv: options.rsv, opcode, payloadLength: length, mask })
      if (mask !== undefined) unmaskInPlace(slab, start + hsize, length, mask, 0, 0)
      slabOffset += hsize + length
      this.runEnd = slabOffset
      this.pendingBytes += hsize + length
      return
    }
    const length = Buffer.byteLength(text)
    if (length <= SMALL_FRAME) {
      const mask = this.mask ? nextMask() : undefined
      const hsize = headerSize(length, this.mask)
      const start = this.reserve(hsize + length)
      const o = encodeHeader(slab, start, { fin: options.fin, rsv: options.rsv, opcode, payloadLength: length, mask })
      slab.write(text, o, length)
      if (mask !== undefined) unmaskInPlace(slab, o, length, mask, 0, 0)
      return
    }
    this.frame(opcode, Buffer.from(text, 'utf8'), options)
  }

  /**
   * Queue a frame encoded already (a message framed once for many connections): it joins this
   * writer's output in order, referenced, not copied (the caller must not modify it).
   */
  encoded (frame: Buffer): void {
    this.closeRun()
    this.push(frame)
    this.pendingBytes += frame.length
  }

  /** Drain the queued bytes, in order. */
  take (): Buffer[] {
    this.closeRun()
    const out = this.chunks
    if (out.length === 0) return NOTHING // most reads produce no output: no array per call
    this.chunks = NOTHING
    this.pendingBytes = 0
    return out
  }

  private push (chunk: Buffer): void {
    if (this.chunks === NOTHING) this.chunks = [chunk]
    else this.chunks.push(chunk)
  }
}
