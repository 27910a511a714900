/**
 * A deliberately simple reference model of the core, written from RFC 6455 §5 for the fuzz
 * test: it reads the whole input at once (no streaming, no chunking), uses the WHATWG decoder
 * for UTF-8 and BigInt for lengths, and returns the events and output frames the core must
 * produce. Where one header breaks several rules, every one of them is an acceptable error code
 * (the core may check in any order), so a failure is described by the set of allowed codes.
 */
import { TextDecoder } from 'node:util'

export interface RefOptions {
  role: 'server' | 'client'
  maxPayload: number
  maxFragments: number
  allowRsv1: boolean
  /** the application calls close(1000) once this many input bytes were fed (undefined: never) */
  closeAfter?: number | undefined
}

export type RefEvent =
  | { type: 'message', binary: boolean, compressed: boolean, data: string }
  | { type: 'ping', data: string }
  | { type: 'pong', data: string }
  | { type: 'close', code: number, reason: string }
  | { type: 'fail', codes: string[] }

export interface RefOutFrame { opcode: number, payload: string }

export interface RefResult {
  events: RefEvent[]
  output: RefOutFrame[]
}

export const CLOSE_CODE_OF: Record<string, number> = {
  WS_ERR_UNMASKED_FRAME: 1002,
  WS_ERR_MASKED_FRAME: 1002,
  WS_ERR_RESERVED_BITS: 1002,
  WS_ERR_RESERVED_OPCODE: 1002,
  WS_ERR_FRAGMENTED_CONTROL_FRAME: 1002,
  WS_ERR_CONTROL_FRAME_TOO_LONG: 1002,
  WS_ERR_UNEXPECTED_CONTINUATION: 1002,
  WS_ERR_EXPECTED_CONTINUATION: 1002,
  WS_ERR_LENGTH_MSB_SET: 1002,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_MESSAGE_TOO_BIG: 1009,
  WS_ERR_TOO_MANY_FRAGMENTS: 1009,
  WS_ERR_INVALID_CLOSE_CODE: 1002,
  WS_ERR_INVALID_CLOSE_PAYLOAD: 1002,
  WS_ERR_INVALID_CLOSE_REASON: 1007
}

function validCloseCode (code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

function closeBodyHex (code: number | undefined): string {
  if (code === undefined) return ''
  const b = Buffer.alloc(2)
  b.writeUInt16BE(code)
  return b.toString('hex')
}

export function reference (input: Buffer, options: RefOptions): RefResult {
  const events: RefEvent[] = []
  const output: RefOutFrame[] = []
  const wantMask = options.role === 'server'
  let closeSent = false
  /**
   * The application calls close(1000) once closeAfter bytes were fed, so before anything that
   * happens when byte index `p - 1` arrives with p > closeAfter.
   */
  const appCloseBefore = (p: number): void => {
    if (!closeSent && options.closeAfter !== undefined && p > options.closeAfter) {
      closeSent = true
      output.push({ opcode: 8, payload: closeBodyHex(1000) })
    }
  }
  /** a failure detected when byte index `p - 1` arrives */
  const fail = (p: number, codes: string[]): RefResult => {
    appCloseBefore(p)
    // the close frame of a failure goes out unless one was already sent; its payload is the
    // close code of whichever allowed error code the core reports (the marker 'fail')
    if (!closeSent) output.push({ opcode: 8, payload: 'fail' })
    events.push({ type: 'fail', codes })
    return { events, output }
  }

  let pos = 0
  // the data message in progress
  let msgOpcode = 0
  let compressed = false
  let fragments = 0
  let parts: Buffer[] = []
  let msgLength = 0
  let decoder: TextDecoder | null = null

  for (;;) {
    const avail = input.length - pos
    if (avail < 2) break
    const b0 = input[pos]
    const b1 = input[pos + 1]
    const fin = (b0 & 0x80) !== 0
    const rsv = (b0 >> 4) & 7
    const opcode = b0 & 0xf
    const masked = (b1 & 0x80) !== 0
    const len7 = b1 & 0x7f
    const size = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0)
    if (avail < size) break
    let length: bigint = BigInt(len7)
    if (len7 === 126) length = BigInt(input.readUInt16BE(pos + 2))
    if (len7 === 127) length = input.readBigUInt64BE(pos + 2)
    // every rule this header breaks
    const broken: string[] = []
    if (length >= 1n << 63n) broken.push('WS_ERR_LENGTH_MSB_SET')
    if (masked !== wantMask) broken.push(masked ? 'WS_ERR_MASKED_FRAME' : 'WS_ERR_UNMASKED_FRAME')
    const control = opcode >= 8
    let startsMessage = false
    if (control) {
      if (opcode > 0xa) broken.push('WS_ERR_RESERVED_OPCODE')
      if (!fin) broken.push('WS_ERR_FRAGMENTED_CONTROL_FRAME')
      if (length > 125n) broken.push('WS_ERR_CONTROL_FRAME_TOO_LONG')
      if (rsv !== 0) broken.push('WS_ERR_RESERVED_BITS')
    } else {
      if (opcode > 2) {
        broken.push('WS_ERR_RESERVED_OPCODE')
      } else if (opcode === 0) {
        if (msgOpcode === 0) broken.push('WS_ERR_UNEXPECTED_CONTINUATION')
        if (rsv !== 0) broken.push('WS_ERR_RESERVED_BITS')
      } else {
        if (msgOpcode !== 0) broken.push('WS_ERR_EXPECTED_CONTINUATION')
        if (rsv !== 0 && !(rsv === 4 && options.allowRsv1)) broken.push('WS_ERR_RESERVED_BITS')
        startsMessage = true
      }
      const before = startsMessage ? 0 : msgLength
      if (length + BigInt(before) > BigInt(options.maxPayload)) broken.push('WS_ERR_MESSAGE_TOO_BIG')
      if ((startsMessage ? 0 : fragments) + 1 > options.maxFragments) broken.push('WS_ERR_TOO_MANY_FRAGMENTS')
    }
    if (broken.length > 0) return fail(pos + size, broken)
    const len = Number(length) // <= maxPayload or <= 125 here
    if (startsMessage) {
      msgOpcode = opcode
      compressed = rsv === 4
      fragments = 0
      parts = []
      msgLength = 0
      decoder = opcode === 1 && !compressed ? new TextDecoder('utf-8', { fatal: true }) : null
    }
    if (!control) fragments++
    const key = masked ? input.subarray(pos + size - 4, pos + size) : null
    const got = Math.min(len, avail - size)
    const payload = Buffer.from(input.subarray(pos + size, pos + size + got))
    if (key !== null) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i % 4]
    if (control) {
      if (got < len) break
      const p = pos + size + len
      appCloseBefore(p)
      pos = p
      if (opcode === 0x9) {
        if (!closeSent) output.push({ opcode: 0xa, payload: payload.toString('hex') })
        events.push({ type: 'ping', data: payload.toString('hex') })
      } else if (opcode === 0xa) {
        events.push({ type: 'pong', data: payload.toString('hex') })
      } else {
        if (payload.length === 1) return fail(pos, ['WS_ERR_INVALID_CLOSE_PAYLOAD'])
        let code = 1005
        let reason = ''
        if (payload.length >= 2) {
          code = payload.readUInt16BE(0)
          if (!validCloseCode(code)) return fail(pos, ['WS_ERR_INVALID_CLOSE_CODE'])
          try {
            // ignoreBOM: a leading U+FEFF is part of the reason, not a byte order mark to strip
            // (the WHATWG WebSocket API also decodes the reason "without BOM" handling)
            reason = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(payload.subarray(2))
          } catch {
            return fail(pos, ['WS_ERR_INVALID_CLOSE_REASON'])
          }
        }
        if (!closeSent) {
          closeSent = true
          output.push({ opcode: 8, payload: closeBodyHex(code === 1005 ? undefined : code) })
        }
        events.push({ type: 'close', code, reason })
        return { events, output }
      }
      continue
    }
    // data: the available bytes are UTF-8 checked at once, even when the frame is incomplete;
    // the part fed before the application's close is checked before it
    if (decoder !== null) {
      const start = pos + size
      const cut = options.closeAfter !== undefined && options.closeAfter > start && options.closeAfter < start + got
        ? options.closeAfter - start
        : got
      try {
        decoder.decode(payload.subarray(0, cut), { stream: true })
      } catch {
        return fail(start + cut, ['WS_ERR_INVALID_UTF8'])
      }
      if (cut < got) {
        try {
          decoder.decode(payload.subarray(cut), { stream: true })
        } catch {
          return fail(start + got, ['WS_ERR_INVALID_UTF8'])
        }
      }
    }
    if (got < len) break
    pos += size + len
    parts.push(payload)
    msgLength += len
    if (fin) {
      if (decoder !== null) {
        try {
          decoder.decode()
        } catch {
          return fail(pos, ['WS_ERR_INVALID_UTF8'])
        }
      }
      events.push({ type: 'message', binary: msgOpcode === 2, compressed, data: Buffer.concat(parts).toString('hex') })
      msgOpcode = 0
      compressed = false
      fragments = 0
      parts = []
      msgLength = 0
      decoder = null
    }
  }
  appCloseBefore(input.length + 1)
  return { events, output }
}
