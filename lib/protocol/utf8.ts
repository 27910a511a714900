/**
 * Incremental UTF-8 validation (RFC 3629 §4 / Unicode Table 3-7), so that a text message split
 * across fragments, frames or TCP reads fails as soon as an invalid sequence arrives
 * (RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the
 * byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
 * Connection_.").
 *
 * The state is a small integer: 0 = at a character boundary, REJECT = invalid, anything else =
 * inside a multi-byte sequence. The middle of a piece is checked by Node's native `isUtf8`; only
 * the (at most 3) bytes of a sequence cut at a piece boundary go through the state machine.
 */
import { isUtf8 } from 'node:buffer'

export const UTF8_ACCEPT = 0
export const UTF8_REJECT = 8

// states: 1 = one continuation byte (80..BF) left, 2 = two left, 3 = three left,
// 4 = after E0 (next A0..BF), 5 = after ED (next 80..9F), 6 = after F0 (next 90..BF),
// 7 = after F4 (next 80..8F)
function step (state: number, byte: number): number {
  switch (state) {
    case 0:
      if (byte < 0x80) return 0
      if (byte < 0xc2) return UTF8_REJECT
      if (byte < 0xe0) return 1
      if (byte === 0xe0) return 4
      if (byte === 0xed) return 5
      if (byte < 0xf0) return 2
      if (byte === 0xf0) return 6
      if (byte < 0xf4) return 3
      if (byte === 0xf4) return 7
      return UTF8_REJECT
    case 1: return byte >= 0x80 && byte <= 0xbf ? 0 : UTF8_REJECT
    case 2: return byte >= 0x80 && byte <= 0xbf ? 1 : UTF8_REJECT
    case 3: return byte >= 0x80 && byte <= 0xbf ? 2 : UTF8_REJECT
    case 4: return byte >= 0xa0 && byte <= 0xbf ? 1 : UTF8_REJECT
    case 5: return byte >= 0x80 && byte <= 0x9f ? 1 : UTF8_REJECT
    case 6: return byte >= 0x90 && byte <= 0xbf ? 2 : UTF8_REJECT
    case 7: return byte >= 0x80 && byte <= 0x8f ? 2 : UTF8_REJECT
    default: return UTF8_REJECT
  }
}

/** Length of the sequence a lead byte starts (0 for a continuation or invalid byte). */
function sequenceLength (byte: number): number {
  if (byte < 0x80) return 1
  if (byte < 0xc0) return 0
  if (byte < 0xe0) return 2
  if (byte < 0xf0) return 3
  if (byte < 0xf8) return 4
  return 0
}

/**
 * Validate `data[start, end)` continuing from `state`; returns the new state
 * (UTF8_REJECT as soon as the bytes seen cannot be the prefix of valid UTF-8).
 */
export function validateUtf8 (data: Uint8Array, start: number, end: number, state: number): number {
  let i = start
  // finish a sequence left open by the previous piece
  while (state !== UTF8_ACCEPT && i < end) {
    state = step(state, data[i++])
    if (state === UTF8_REJECT) return state
  }
  if (i >= end) return state
  // find where an incomplete trailing sequence begins (look back at most 3 bytes)
  let tail = end
  for (let j = end - 1; j >= i && j >= end - 3; j--) {
    const len = sequenceLength(data[j])
    if (len === 0) continue // continuation byte: keep looking for its lead
    if (j + len > end) tail = j
    break
  }
  if (tail > i) {
    const middle = i === 0 && tail === data.length ? data : data.subarray(i, tail)
    if (!isUtf8(middle)) return UTF8_REJECT
  }
  for (let j = tail; j < end; j++) {
    state = step(state, data[j])
    if (state === UTF8_REJECT) return state
  }
  return state
}

/** Whole-buffer check. */
export function isValidUtf8 (data: Uint8Array): boolean {
  return data.length === 0 || isUtf8(data)
}
