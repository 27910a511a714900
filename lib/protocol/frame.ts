/**
 * RFC 6455 §5.2: the base framing protocol. Header encode/decode as a symmetric pair, and the
 * Close frame body (§5.5.1).
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-------+-+-------------+-------------------------------+
 *  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *  | |1|2|3|       |K|             |                               |
 *  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 */
import { CloseCode, isValidCloseCode, MAX_CLOSE_REASON } from './constants.js'
import { ErrorCode, ProtocolError } from './errors.js'
import { isValidUtf8 } from './utf8.js'

export interface FrameHeader {
  fin: boolean
  /** RSV1..RSV3 as a 3-bit number (RSV1 = 4) */
  rsv: number
  opcode: number
  masked: boolean
  payloadLength: number
  /** total header size in bytes, masking key included */
  headerLength: number
}

/**
 * Size of the header needed to carry `payloadLength`: §5.2 "the minimal number of bytes MUST be
 * used to encode the length".
 */
export function headerSize (payloadLength: number, masked: boolean): number {
  const base = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10
  return masked ? base + 4 : base
}

/**
 * Write a frame header into `target` at `offset`; returns the offset after it. When `mask` is
 * given (client role), its 4 bytes are written as the masking key.
 */
export function encodeHeader (
  target: Uint8Array, offset: number,
  frame: { fin: boolean, rsv: number, opcode: number, payloadLength: number, mask?: Uint8Array | undefined }
): number {
  const { payloadLength, mask } = frame
  target[offset] = (frame.fin ? 0x80 : 0) | ((frame.rsv & 7) << 4) | (frame.opcode & 0x0f)
  const maskBit = mask !== undefined ? 0x80 : 0
  let o = offset + 2
  if (payloadLength < 126) {
    target[offset + 1] = maskBit | payloadLength
  } else if (payloadLength < 65536) {
    target[offset + 1] = maskBit | 126
    target[o++] = payloadLength >>> 8
    target[o++] = payloadLength & 0xff
  } else {
    target[offset + 1] = maskBit | 127
    // §5.2: the most significant bit MUST be 0; JS numbers stay below 2^53
    const high = Math.floor(payloadLength / 0x100000000)
    const low = payloadLength >>> 0
    target[o++] = high >>> 24; target[o++] = (high >>> 16) & 0xff
    target[o++] = (high >>> 8) & 0xff; target[o++] = high & 0xff
    target[o++] = low >>> 24; target[o++] = (low >>> 16) & 0xff
    target[o++] = (low >>> 8) & 0xff; target[o++] = low & 0xff
  }
  if (mask !== undefined) {
    target[o++] = mask[0]; target[o++] = mask[1]; target[o++] = mask[2]; target[o++] = mask[3]
  }
  return o
}

/**
 * Decode a frame header from `source[offset, end)`. Returns null when more bytes are needed.
 * Throws ProtocolError for a 64-bit length with the most significant bit set (§5.2).
 */
export function decodeHeader (source: Uint8Array, offset: number, end: number): FrameHeader | null {
  const header: FrameHeader = { fin: false, rsv: 0, opcode: 0, masked: false, payloadLength: 0, headerLength: 0 }
  return decodeHeaderInto(source, offset, end, header) ? header : null
}

/**
 * decodeHeader into a caller-owned object (the parser reuses one: no allocation per frame).
 * Returns false when more bytes are needed; `out` is then left unchanged.
 */
export function decodeHeaderInto (source: Uint8Array, offset: number, end: number, out: FrameHeader): boolean {
  if (end - offset < 2) return false
  const b0 = source[offset]
  const b1 = source[offset + 1]
  const masked = (b1 & 0x80) !== 0
  let len = b1 & 0x7f
  let size = 2
  if (len === 126) size = 4
  else if (len === 127) size = 10
  if (masked) size += 4
  if (end - offset < size) return false
  if (len === 126) {
    len = (source[offset + 2] << 8) | source[offset + 3]
  } else if (len === 127) {
    const hi = ((source[offset + 2] << 24) | (source[offset + 3] << 16) | (source[offset + 4] << 8) | source[offset + 5]) >>> 0
    const lo = ((source[offset + 6] << 24) | (source[offset + 7] << 16) | (source[offset + 8] << 8) | source[offset + 9]) >>> 0
    // RFC 6455 §5.2: "the most significant bit MUST be 0"
    if (hi & 0x80000000) {
      throw new ProtocolError(ErrorCode.LengthTooLarge, CloseCode.ProtocolError, 'frame length has its most significant bit set')
    }
    len = hi * 0x100000000 + lo
  }
  out.fin = (b0 & 0x80) !== 0
  out.rsv = (b0 >>> 4) & 7
  out.opcode = b0 & 0x0f
  out.masked = masked
  out.payloadLength = len
  out.headerLength = size
  return true
}

/** A parsed Close frame body. */
export interface ClosePayload {
  /** 1005 (No Status Received) when the body was empty */
  code: number
  reason: string
}

/**
 * RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
 * integer (in network byte order) representing a status code", followed by a UTF-8 reason.
 */
export function decodeClosePayload (payload: Uint8Array): ClosePayload {
  if (payload.length === 0) return { code: CloseCode.NoStatusReceived, reason: '' }
  if (payload.length === 1) {
    throw new ProtocolError(ErrorCode.InvalidClosePayload, CloseCode.ProtocolError, 'close frame body of 1 byte')
  }
  const code = (payload[0] << 8) | payload[1]
  if (!isValidCloseCode(code)) {
    throw new ProtocolError(ErrorCode.InvalidCloseCode, CloseCode.ProtocolError, `invalid close code ${code}`)
  }
  const reasonBytes = payload.subarray(2)
  // §5.5.1: "the data ... is not guaranteed to be human readable" but it MUST be UTF-8 (§8.1)
  if (!isValidUtf8(reasonBytes)) {
    throw new ProtocolError(ErrorCode.InvalidCloseReason, CloseCode.InvalidFramePayloadData, 'close reason is not valid UTF-8')
  }
  return { code, reason: Buffer.from(reasonBytes.buffer, reasonBytes.byteOffset, reasonBytes.length).toString('utf8') }
}

/** Build a Close frame body; `code` undefined gives an empty body. Checks are the caller's. */
export function encodeClosePayload (code: number | undefined, reason: string | Buffer): Buffer {
  if (code === undefined) return Buffer.alloc(0)
  const reasonLength = typeof reason === 'string' ? Buffer.byteLength(reason) : reason.length
  const body = Buffer.allocUnsafe(2 + Math.min(reasonLength, MAX_CLOSE_REASON))
  body[0] = code >>> 8
  body[1] = code & 0xff
  if (typeof reason === 'string') body.write(reason, 2)
  else reason.copy(body, 2)
  return body
}
