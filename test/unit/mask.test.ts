// lib/protocol/mask.ts: RFC 6455 §5.3 "octet i of the transformed data is the XOR of octet i of
// the original data with octet at index i modulo 4 of the masking key".
import t from 'tap'
import { ARENA_SIZE, maskInto, readArena, unmaskCopy, unmaskInPlace } from '../../lib/protocol/mask.js'
import { prng, randInt, randomBytes } from './helpers.js'

function naive (data: Uint8Array, key: Uint8Array, keyIndex: number): Buffer {
  const out = Buffer.from(data)
  for (let i = 0; i < out.length; i++) out[i] ^= key[(keyIndex + i) % 4]
  return out
}

const rand = prng(1234)

t.test('unmaskInPlace equals the naive XOR for lengths 0..300, byte offsets 0..7, key indexes 0..3', async (t) => {
  const key = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d])
  // the key itself sits at an offset inside a larger buffer, as it does in a received chunk
  const keyHolder = Buffer.concat([Buffer.from([9, 9, 9]), key])
  let mismatches = 0
  let cases = 0
  for (let len = 0; len <= 300; len++) {
    const original = randomBytes(rand, len)
    for (let offset = 0; offset < 8; offset++) {
      for (let keyIndex = 0; keyIndex < 4; keyIndex++) {
        // an ArrayBuffer of its own, so byteOffset alignment is exactly `offset`
        const backing = new Uint8Array(new ArrayBuffer(len + 16))
        const data = backing.subarray(offset, offset + len + 8)
        data.set(original, 3)
        data[0] = 0xaa; data[1] = 0xbb; data[2] = 0xcc
        const next = unmaskInPlace(data, 3, len, keyHolder, 3, keyIndex)
        const want = naive(original, key, keyIndex)
        cases++
        if (!Buffer.from(data.subarray(3, 3 + len)).equals(want) || next !== (keyIndex + len) % 4 ||
          data[0] !== 0xaa || data[1] !== 0xbb || data[2] !== 0xcc ||
          data.subarray(3 + len).some((b) => b !== 0)) {
          mismatches++
          if (mismatches < 5) t.fail(`len ${len} offset ${offset} keyIndex ${keyIndex}`)
        }
      }
    }
  }
  t.equal(cases, 301 * 8 * 4)
  t.equal(mismatches, 0, 'every case matches and no byte outside the range is touched')
})

t.test('unmasking in pieces split anywhere resumes with the returned key index', async (t) => {
  const key = Uint8Array.from([0x12, 0x34, 0x56, 0x78])
  let mismatches = 0
  for (let len = 0; len <= 300; len++) {
    const original = randomBytes(rand, len)
    const want = naive(original, key, 0)
    // every single split point
    for (let split = 0; split <= len; split++) {
      const data = Buffer.from(original)
      const k = unmaskInPlace(data, 0, split, key, 0, 0)
      const k2 = unmaskInPlace(data, split, len - split, key, 0, k)
      if (!data.equals(want) || k2 !== len % 4) mismatches++
    }
    // random multi-splits, at random alignments
    for (let r = 0; r < 4; r++) {
      const offset = randInt(rand, 8)
      const backing = new Uint8Array(new ArrayBuffer(len + 8))
      const data = backing.subarray(offset, offset + len)
      data.set(original)
      let pos = 0
      let k = 0
      while (pos < len) {
        const n = Math.min(len - pos, 1 + randInt(rand, 80))
        k = unmaskInPlace(data, pos, n, key, 0, k)
        pos += n
      }
      if (!Buffer.from(data).equals(want)) mismatches++
    }
  }
  t.equal(mismatches, 0)
})

t.test('masking twice restores the data; maskInto leaves the source untouched', async (t) => {
  const key = Uint8Array.from([1, 2, 3, 4])
  const source = randomBytes(rand, 1000)
  const copy = Buffer.from(source)
  const target = Buffer.alloc(1005)
  maskInto(source, target, 5, key, 0)
  t.ok(source.equals(copy), 'source untouched')
  t.ok(target.subarray(5).equals(naive(source, key, 0)))
  unmaskInPlace(target, 5, 1000, key, 0, 0)
  t.ok(target.subarray(5).equals(source))
  t.same([...target.subarray(0, 5)], [0, 0, 0, 0, 0])
})

t.test('lengths around the 32-bit and SIMD thresholds and the 64 KiB block, every offset and key index', async (t) => {
  const key = Uint8Array.from([0xa1, 0xb2, 0xc3, 0xd4])
  const lengths = [31, 32, 33, 63, 64, 65, 500, 511, 512, 513, 575, 576, 577, 1000, 4099,
    65535, 65536, 65537, 65536 + 63, 65536 + 64, 131072 + 5, 200000]
  let mismatches = 0
  for (const len of lengths) {
    const original = randomBytes(rand, len)
    for (let offset = 0; offset < 8; offset++) {
      for (let keyIndex = 0; keyIndex < 4; keyIndex++) {
        const backing = new Uint8Array(new ArrayBuffer(len + 16))
        backing.fill(0x5a)
        const data = backing.subarray(offset, offset + len + 2)
        data.set(original, 1)
        const next = unmaskInPlace(data, 1, len, key, 0, keyIndex)
        const want = naive(original, key, keyIndex)
        if (!Buffer.from(data.subarray(1, 1 + len)).equals(want) || next !== (keyIndex + len) % 4 ||
          backing.subarray(0, offset + 1).some((b) => b !== 0x5a) || backing.subarray(offset + 1 + len).some((b) => b !== 0x5a)) {
          mismatches++
          if (mismatches < 5) t.fail(`len ${len} offset ${offset} keyIndex ${keyIndex}`)
        }
      }
    }
    // split into two pieces around the thresholds
    for (const split of [1, 3, 31, 32, 511, 512, 513, len >> 1, len - 513, len - 1]) {
      if (split < 0 || split > len) continue
      const data = Buffer.from(original)
      const k = unmaskInPlace(data, 0, split, key, 0, 0)
      unmaskInPlace(data, split, len - split, key, 0, k)
      if (!data.equals(naive(original, key, 0))) mismatches++
    }
  }
  t.equal(mismatches, 0)
})

t.test('large unaligned payload (fast path) equals the reference', async (t) => {
  const key = Uint8Array.from([0xde, 0xad, 0xbe, 0xef])
  for (const len of [1 << 16, (1 << 20) + 3]) {
    const original = randomBytes(rand, len)
    const backing = new Uint8Array(new ArrayBuffer(len + 8))
    const data = backing.subarray(5, 5 + len)
    data.set(original)
    unmaskInPlace(data, 0, len, key, 0, 2)
    t.ok(Buffer.from(data).equals(naive(original, key, 2)), `length ${len}`)
  }
})

t.test('unmaskCopy equals the naive XOR from a plain buffer and from the read arena, and touches nothing else', async (t) => {
  const key = Uint8Array.from([0x9c, 0x05, 0xe1, 0x7b])
  const keyNumber = (key[0] << 24) | (key[1] << 16) | (key[2] << 8) | key[3]
  const arena = readArena()
  t.ok(arena === null || arena.length === ARENA_SIZE, 'the read arena, where there is one, has ARENA_SIZE bytes')
  // lengths around every threshold: the byte loop (<128), 32-bit words (<512), WebAssembly
  // blocks of 64 with a tail, one scratch block (64 KiB) and more than one
  const lengths = [0, 1, 2, 3, 4, 5, 6, 7, 31, 32, 33, 64, 126, 127, 128, 511, 512, 513, 575, 576, 1000, 4096, 65535, 65536, 65537, 65600, 200003]
  let mismatches = 0
  let cases = 0
  for (const len of lengths) {
    const original = randomBytes(rand, len)
    for (let keyIndex = 0; keyIndex < 4; keyIndex++) {
      const want = naive(original, key, keyIndex)
      // from a plain buffer at an odd offset: the source is left as it was
      const plain = Buffer.concat([Buffer.from([1, 2, 3]), original])
      const target = Buffer.alloc(len + 10, 0xee)
      let next = unmaskCopy(plain, 3, len, target, 5, keyNumber, keyIndex)
      cases++
      if (!target.subarray(5, 5 + len).equals(want) || next !== (keyIndex + len) % 4 || !plain.subarray(3).equals(original) ||
        target.subarray(0, 5).some((b) => b !== 0xee) || target.subarray(5 + len).some((b) => b !== 0xee)) {
        mismatches++
        if (mismatches < 5) t.fail(`plain: len ${len} keyIndex ${keyIndex}`)
      }
      if (arena === null || len + 64 > arena.length) continue
      // from the arena at an unaligned offset, with guard bytes on both sides that must survive
      for (const at of [0, 7, 61]) {
        const guard = 40
        arena.fill(0x5a, at, at + guard)
        original.copy(arena, at + guard)
        arena.fill(0x5a, at + guard + len, at + guard + len + guard)
        const out = Buffer.alloc(len)
        next = unmaskCopy(arena, at + guard, len, out, 0, keyNumber, keyIndex)
        cases++
        const guardsKept = arena.subarray(at, at + guard).every((b) => b === 0x5a) && arena.subarray(at + guard + len, at + guard + len + guard).every((b) => b === 0x5a)
        if (!out.equals(want) || next !== (keyIndex + len) % 4 || !guardsKept) {
          mismatches++
          if (mismatches < 5) t.fail(`arena: len ${len} keyIndex ${keyIndex} at ${at} guards ${guardsKept}`)
        }
      }
    }
  }
  t.equal(mismatches, 0, `${cases} cases`)
})
