/**
 * RFC 6455 §5.3: masking. octet i of the transformed data is octet i of the original data XOR
 * octet at index i modulo 4 of the masking key. Masking and unmasking are the same operation.
 *
 * Three speeds, picked by length:
 * - under WORDS_MIN (128) bytes: a byte loop unrolled by 4, the key in locals (nothing allocated);
 * - up to WASM_MIN bytes: 32 bits at a time over the 4-byte-aligned middle, the key rotated to
 *   the alignment offset, so the byte order of the platform does not matter;
 * - from WASM_MIN bytes: WebAssembly SIMD, 64 bytes per iteration, through a 64 KiB scratch
 *   memory (copy in, XOR, copy out, block by block). It is about 6x faster than the 32-bit JS
 *   loop on large payloads and is pure and portable: no native addon. Where WebAssembly SIMD is
 *   not available the 32-bit loop does all the work.
 */

const keyBytes = new Uint8Array(4)
const keyWord = new Uint32Array(keyBytes.buffer)

/** payloads from this size are XORed 32 bits at a time */
const WORDS_MIN = 128
/** payloads from this size go through WebAssembly SIMD */
const WASM_MIN = 512
/** scratch bytes per block: one 64 KiB page (a multiple of 64 and of 4, so the key phase holds) */
const BLOCK = 65536
/**
 * After the scratch page, the module's memory holds the read arena: the buffer an adapter may
 * read sockets into (see readArena). Bytes read there are unmasked where they lie, by WebAssembly,
 * and copied out once: no copy into the scratch first.
 */
export const ARENA_SIZE = 256 * 1024
const ARENA_PAGES = ARENA_SIZE / 65536

/*
 * The module, hand-assembled (about 150 bytes):
 *   (memory (export "memory") 1)
 *   (func (export "xor") (param $ptr i32) (param $end i32) (param $key i32)
 *     (local $k v128)
 *     (local.set $k (i32x4.splat (local.get $key)))
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $ptr) (local.get $end)))
 *       (v128.store offset=0  (local.get $ptr) (v128.xor (v128.load offset=0  (local.get $ptr)) (local.get $k)))
 *       ... the same at offsets 16, 32 and 48 ...
 *       (local.set $ptr (i32.add (local.get $ptr) (i32.const 64)))
 *       (br 0))))
 * `end - ptr` is rounded up to 64 by the caller; bytes past the payload are scratch.
 */
function xorBlock (offset: number): number[] {
  return [
    0x20, 0x00, // local.get $ptr (store address)
    0x20, 0x00, // local.get $ptr (load address)
    0xfd, 0x00, 0x04, offset, // v128.load align=16 offset
    0x20, 0x03, // local.get $k
    0xfd, 0x51, // v128.xor
    0xfd, 0x0b, 0x04, offset // v128.store align=16 offset
  ]
}

function buildModule (): Uint8Array {
  const body = [
    0x01, 0x01, 0x7b, // one local: v128
    0x20, 0x02, 0xfd, 0x11, 0x21, 0x03, // $k = i32x4.splat($key)
    0x02, 0x40, // block
    0x03, 0x40, // loop
    0x20, 0x00, 0x20, 0x01, 0x4f, 0x0d, 0x01, // br_if 1 ($ptr >= $end)
    ...xorBlock(0), ...xorBlock(16), ...xorBlock(32), ...xorBlock(48),
    0x20, 0x00, 0x41, 0xc0, 0x00, 0x6a, 0x21, 0x00, // $ptr += 64
    0x0c, 0x00, // br 0
    0x0b, 0x0b, 0x0b // end loop, end block, end function
  ]
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, // type: (i32 i32 i32) -> ()
    0x03, 0x02, 0x01, 0x00, // function 0 has type 0
    0x05, 0x03, 0x01, 0x00, 1 + ARENA_PAGES, // memory: min 1 + ARENA_PAGES pages (never grown)
    0x07, 0x10, 0x02, // exports:
    0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, // "memory" memory 0
    0x03, 0x78, 0x6f, 0x72, 0x00, 0x00, // "xor" func 0
    0x0a, body.length + 2, 0x01, body.length, ...body // code: one body (shorter than 128 bytes)
  ])
}

let wasmXor: ((ptr: number, end: number, key: number) => void) | null = null
let scratch: Buffer | null = null
let arena: Buffer | null = null
let wasmBuffer: ArrayBuffer | null = null

/** The little of the WebAssembly JS API used here (the project's `lib` setting has no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object) => { exports: Record<string, unknown> }
}

try {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly
  if (wasm !== undefined) {
    const instance = new wasm.Instance(new wasm.Module(buildModule()))
    const memory = instance.exports.memory as { buffer: ArrayBuffer }
    scratch = Buffer.from(memory.buffer, 0, BLOCK)
    arena = Buffer.from(memory.buffer, BLOCK, ARENA_SIZE)
    wasmBuffer = memory.buffer
    wasmXor = instance.exports.xor as (ptr: number, end: number, key: number) => void
  }
} catch {
  // no WebAssembly SIMD here: the 32-bit loop does all the work
  wasmXor = null
  scratch = null
  arena = null
  wasmBuffer = null
}

/**
 * A buffer of ARENA_SIZE bytes to read sockets into, inside WebAssembly memory, or null without
 * WebAssembly SIMD. Bytes of it given to unmaskCopy() as the source are unmasked in place (the
 * source is changed) and copied once. The memory is never grown, so the buffer stays valid.
 */
export function readArena (): Buffer | null {
  return arena
}

const copy = Buffer.prototype.copy

/**
 * A 32-bit view of a whole ArrayBuffer, kept for the last buffer seen: the frames of one socket
 * read share its buffer, so they share one view instead of allocating one per frame.
 */
let viewBuffer: ArrayBufferLike | null = null
let view32: Uint32Array<ArrayBufferLike> = new Uint32Array(0)
function wordsOf (buffer: ArrayBufferLike): Uint32Array {
  if (buffer !== viewBuffer) {
    viewBuffer = buffer
    view32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2)
  }
  return view32
}

/**
 * XOR `length` bytes of `data` starting at `start` in place with `mask` (4 bytes at `maskOffset`),
 * the first byte using key index `keyIndex` (0-3). Returns the key index after the last byte, so a
 * payload that arrives in pieces can be unmasked piece by piece.
 */
export function unmaskInPlace (
  data: Uint8Array, start: number, length: number,
  mask: Uint8Array, maskOffset: number, keyIndex: number
): number {
  let i = start
  const end = start + length
  let k = keyIndex & 3
  if (length < WORDS_MIN) {
    // small payloads (most chat-sized messages): 4 bytes per iteration, the key in locals
    const m0 = mask[maskOffset + k]
    const m1 = mask[maskOffset + ((k + 1) & 3)]
    const m2 = mask[maskOffset + ((k + 2) & 3)]
    const m3 = mask[maskOffset + ((k + 3) & 3)]
    const stop = end - 3
    for (; i < stop; i += 4) {
      data[i] ^= m0
      data[i + 1] ^= m1
      data[i + 2] ^= m2
      data[i + 3] ^= m3
    }
    for (; i < end; i++) {
      data[i] ^= mask[maskOffset + k]
      k = (k + 1) & 3
    }
    return (keyIndex + length) & 3
  }
  if (length >= WASM_MIN && wasmXor !== null) {
    // WebAssembly is little-endian: the key word's low byte is the first byte in memory
    const key = mask[maskOffset + k] | (mask[maskOffset + ((k + 1) & 3)] << 8) |
      (mask[maskOffset + ((k + 2) & 3)] << 16) | (mask[maskOffset + ((k + 3) & 3)] << 24)
    const buf = scratch!
    while (i < end) {
      const n = end - i < BLOCK ? end - i : BLOCK
      copy.call(data, buf, 0, i, i + n)
      wasmXor(0, (n + 63) & ~63, key)
      copy.call(buf, data, i, 0, n)
      i += n
    }
    return (k + length) & 3
  }
  // bytes up to the first 4-byte aligned address
  const misalign = (data.byteOffset + i) & 3
  if (misalign !== 0) {
    const head = 4 - misalign
    for (let n = 0; n < head; n++, i++) {
      data[i] ^= mask[maskOffset + k]
      k = (k + 1) & 3
    }
  }
  keyBytes[0] = mask[maskOffset + k]
  keyBytes[1] = mask[maskOffset + ((k + 1) & 3)]
  keyBytes[2] = mask[maskOffset + ((k + 2) & 3)]
  keyBytes[3] = mask[maskOffset + ((k + 3) & 3)]
  const key = keyWord[0]
  const view = wordsOf(data.buffer)
  const first = (data.byteOffset + i) >>> 2
  const last = first + ((end - i) >>> 2)
  for (let w = first; w < last; w++) view[w] ^= key
  i += (last - first) << 2
  for (; i < end; i++) {
    data[i] ^= mask[maskOffset + k]
    k = (k + 1) & 3
  }
  return k
}

const keyScratch = new Uint8Array(4)

/**
 * Same as unmaskInPlace with the key given as a 32-bit number, first key byte in the top 8 bits
 * (`(b0 << 24) | (b1 << 16) | (b2 << 8) | b3`). Lets a parser keep a frame's key in a number
 * field instead of a 4-byte typed array per connection (a typed array costs ~340 bytes).
 */
export function unmaskWithKey (data: Uint8Array, start: number, length: number, key: number, keyIndex: number): number {
  keyScratch[0] = key >>> 24
  keyScratch[1] = (key >>> 16) & 0xff
  keyScratch[2] = (key >>> 8) & 0xff
  keyScratch[3] = key & 0xff
  return unmaskInPlace(data, start, length, keyScratch, 0, keyIndex)
}

/**
 * Copy `length` bytes of `source` from `sourceStart` into `target` at `targetStart`, unmasking on
 * the way (`key` as in unmaskWithKey, first byte with key index `keyIndex`). `source` is left as
 * it was, except when it lies in the read arena (see readArena): then it is unmasked in place and
 * copied once. Otherwise, with WebAssembly, the bytes go source -> scratch -> XOR -> target: one
 * pass fewer than unmasking in place and then copying.
 */
export function unmaskCopy (
  source: Uint8Array, sourceStart: number, length: number,
  target: Uint8Array, targetStart: number, key: number, keyIndex: number
): number {
  if (length < WORDS_MIN) {
    // small payloads: copy and XOR in one loop, the key bytes in locals (a native copy call
    // costs more than the bytes themselves here)
    const shift = (keyIndex & 3) * 8
    const k = shift === 0 ? key : (key << shift) | (key >>> (32 - shift))
    const m0 = k >>> 24
    const m1 = (k >>> 16) & 0xff
    const m2 = (k >>> 8) & 0xff
    const m3 = k & 0xff
    let s = sourceStart
    let t = targetStart
    const stop = sourceStart + (length & ~3)
    for (; s < stop; s += 4, t += 4) {
      target[t] = source[s] ^ m0
      target[t + 1] = source[s + 1] ^ m1
      target[t + 2] = source[s + 2] ^ m2
      target[t + 3] = source[s + 3] ^ m3
    }
    const end = sourceStart + length
    if (s < end) target[t++] = source[s++] ^ m0
    if (s < end) target[t++] = source[s++] ^ m1
    if (s < end) target[t] = source[s] ^ m2
    return (keyIndex + length) & 3
  }
  if (length < WASM_MIN || wasmXor === null) {
    copy.call(source, target, targetStart, sourceStart, sourceStart + length)
    return unmaskWithKey(target, targetStart, length, key, keyIndex)
  }
  // rotate the big-endian key to keyIndex, then lay it out little-endian for WebAssembly
  const shift = (keyIndex & 3) * 8
  const rotated = shift === 0 ? key : (key << shift) | (key >>> (32 - shift))
  const word = ((rotated >>> 24) & 0xff) | ((rotated >>> 8) & 0xff00) | ((rotated << 8) & 0xff0000) | (rotated << 24)
  if (source.buffer === wasmBuffer) {
    // the read arena: unmask where the bytes lie (whole 64-byte blocks by WebAssembly, the tail
    // here: nothing past the payload is touched), then one copy out
    const at = source.byteOffset + sourceStart
    const whole = length & ~63
    wasmXor(at, at + whole, word)
    if (whole < length) unmaskWithKey(source, sourceStart + whole, length - whole, key, keyIndex)
    copy.call(source, target, targetStart, sourceStart, sourceStart + length)
    return (keyIndex + length) & 3
  }
  const buf = scratch!
  let done = 0
  while (done < length) {
    const n = length - done < BLOCK ? length - done : BLOCK
    copy.call(source, buf, 0, sourceStart + done, sourceStart + done + n)
    wasmXor(0, (n + 63) & ~63, word)
    copy.call(buf, target, targetStart + done, 0, n)
    done += n
  }
  return (keyIndex + length) & 3
}

/** Mask `source` into `target` at `targetOffset` (used by the client role; source untouched). */
export function maskInto (
  source: Uint8Array, target: Uint8Array, targetOffset: number, mask: Uint8Array, maskOffset: number
): void {
  target.set(source, targetOffset)
  unmaskInPlace(target, targetOffset, source.length, mask, maskOffset, 0)
}
