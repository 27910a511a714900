/**
 * Lent messages (the `lentMessages` option): memory for large binary messages that is reused
 * instead of allocated per message.
 *
 * A new ArrayBuffer per large message is what V8 counts against its old-generation limit until
 * the next mark-compact (bench/README.md, "Reading the numbers"), so at 64 KiB and 1 MiB the
 * allocation, not the protocol, sets a server's CPU per message. Here a message's bytes are a view
 * of a slab: one ArrayBuffer of a power-of-two size class (16 KiB to 16 MiB), taken from a free
 * list and given back to it once nothing can read it any more. A slab carries a count:
 * - 1 while the message is being delivered: the 'message' listeners run (an async listener's
 *   promise holds one more until it settles);
 * - 1 per send() of its bytes (the message, a subarray, any view of the slab) until the socket's
 *   write callback ran (written to the operating system, or failed with the socket);
 * - 1 while the parser fills it (a message split across reads), dropped if the message never
 *   completes (a failure, the connection's end).
 * At 0 it goes back to the free list (at most MAX_FREE_BYTES of slabs wait there; more are left to
 * the GC). What the application keeps beyond its listener is not counted: that is the contract
 * of the option (valid until the listener returns), as uWebSockets.js hands its messages.
 */
import type { MessageMemory } from '../protocol/parser.js'

/** Smallest message that is lent: smaller ones cost little to allocate (and the writer copies them). */
export const LENT_MIN = 16 * 1024
const MIN_CLASS_BITS = 14 // 16 KiB
/** Largest message that is lent (larger ones are rare and would pin a large slab) */
const LENT_MAX = 16 * 1024 * 1024
/** slabs kept for reuse, in bytes over every size class */
const MAX_FREE_BYTES = 32 * 1024 * 1024

const kSlab: unique symbol = Symbol('fastify-rfc6455.slab')

/** One slab: its memory and the count of what still reads it. */
class Slab {
  count = 0
  readonly memory: Buffer
  readonly sizeClass: number
  /** the count's release as a send callback (made once per slab, not per send) */
  readonly release: () => void

  constructor (sizeClass: number) {
    this.sizeClass = sizeClass
    this.memory = Buffer.allocUnsafeSlow(1 << (sizeClass + MIN_CLASS_BITS))
    // the ArrayBuffer names its slab: any view of it (a subarray, a Uint8Array) finds it
    Object.defineProperty(this.memory.buffer, kSlab, { value: this })
    this.release = () => { releaseSlab(this) }
  }
}

export type { Slab }

const free: Slab[][] = []
for (let c = 0; c <= 24 - MIN_CLASS_BITS; c++) free.push([])
let freeBytes = 0
let inUse = 0
/** set once a slab exists: until then send() does not look for slabs */
let lending = false

function sizeClassOf (size: number): number {
  // the smallest power of two >= size, as an index from 16 KiB
  return Math.max(0, 32 - Math.clz32(size - 1) - MIN_CLASS_BITS)
}

function releaseSlab (slab: Slab): void {
  if (slab.count <= 0) return
  if (--slab.count > 0) return
  inUse--
  const bytes = slab.memory.length
  if (freeBytes + bytes > MAX_FREE_BYTES) return // left to the GC
  freeBytes += bytes
  free[slab.sizeClass].push(slab)
}

/** The slab a lent buffer (or any view of one) is a view of, if it is one. */
export function slabOf (data: Uint8Array): Slab | undefined {
  if (!lending) return undefined
  return (data.buffer as ArrayBuffer & { [kSlab]?: Slab })[kSlab]
}

/** One more reader of `slab` (a send of its bytes, an async listener): release() when done. */
export function holdSlab (slab: Slab): void {
  slab.count++
}

/** The message memory of connections with `lentMessages` (the parser takes and drops from it). */
export const messagePool: MessageMemory = {
  take (size: number): Buffer | undefined {
    if (size < LENT_MIN || size > LENT_MAX) return undefined
    const sizeClass = sizeClassOf(size)
    let slab = free[sizeClass].pop()
    if (slab === undefined) {
      slab = new Slab(sizeClass)
      lending = true
    } else {
      freeBytes -= slab.memory.length
    }
    slab.count = 1
    inUse++
    return slab.memory.subarray(0, size)
  },
  drop (buffer: Buffer): void {
    const slab = slabOf(buffer)
    if (slab !== undefined) releaseSlab(slab)
  }
}

/** Slabs some message, listener or write still holds (for tests: back to 0 once all is done). */
export function lentSlabsInUse (): number {
  return inUse
}

/**
 * Bytes for a reader that keeps them beyond what a write callback covers (the compression
 * outbox: zlib reads its input later; injectWS's in-memory socket: its peer keeps what was
 * pushed): a copy of lent bytes, the value itself otherwise.
 */
export function ownBytes<T extends string | Buffer> (payload: T): T {
  if (typeof payload === 'string' || slabOf(payload) === undefined) return payload
  return Buffer.from(payload) as T
}
