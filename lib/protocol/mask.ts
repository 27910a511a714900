/**
 * RFC 6455 §5.3: masking. octet i of the transformed data is octet i of the original data XOR
 * octet at index i modulo 4 of the masking key. Masking and unmasking are the same operation.
 *
 * The fast path XORs 32 bits at a time over the 4-byte-aligned middle of the buffer, with the
 * key rotated to the alignment offset, so the byte order of the platform does not matter: the
 * 32-bit key is read from memory laid out exactly like the data it is applied to.
 */

const keyBytes = new Uint8Array(4)
const keyWord = new Uint32Array(keyBytes.buffer)

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
  if (length < 32) {
    for (; i < end; i++) {
      data[i] ^= mask[maskOffset + k]
      k = (k + 1) & 3
    }
    return k
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
  const words = (end - i) >>> 2
  const view = new Uint32Array(data.buffer, data.byteOffset + i, words)
  for (let w = 0; w < words; w++) view[w] ^= key
  i += words << 2
  for (; i < end; i++) {
    data[i] ^= mask[maskOffset + k]
    k = (k + 1) & 3
  }
  return k
}

/** Mask `source` into `target` at `targetOffset` (used by the client role; source untouched). */
export function maskInto (
  source: Uint8Array, target: Uint8Array, targetOffset: number, mask: Uint8Array, maskOffset: number
): void {
  target.set(source, targetOffset)
  unmaskInPlace(target, targetOffset, source.length, mask, maskOffset, 0)
}
