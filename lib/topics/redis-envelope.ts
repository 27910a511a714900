/**
 * The bytes one Redis pub/sub message carries between instances. Pure: no I/O, no ioredis.
 *
 * ```
 *  0        1        2                 18
 * +--------+--------+-----------------+---------------------------------------------+
 * |version |  kind  | instance id (16)| body                                        |
 * +--------+--------+-----------------+---------------------------------------------+
 * kind 1 text publication      body: the UTF-8 payload as sent
 * kind 2 binary publication    body: the payload as sent
 * kind 5 JSON publication      body: the JSON text of a plain object or array (each receiving
 *                              process serializes it again through its subscribers' schemas)
 * kind 3 presence request      body: request id (uint32 BE)
 * kind 4 presence reply        body: request id (uint32 BE), local subscriber count (uint32 BE)
 * kind 6 history publication   body: `<epoch> <offset> <data>`: the stream's epoch (1 to 64 bytes,
 *                              no space), the offset in decimal ASCII, one space each, then the
 *                              JSON text as stored (written by the Lua script of ./redis-history-script.ts;
 *                              every instance, the publisher too, delivers it)
 * ```
 *
 * The topic is not in the envelope: it is the channel the message arrives on. The instance id
 * lets an instance skip the copies of its own publications that Redis hands back to it (it is
 * subscribed to the channels it publishes on whenever it has local subscribers), so each
 * subscriber receives a publication exactly once. The body is raw bytes, so binary payloads
 * cross unchanged (no base64, no JSON).
 */

export const ENVELOPE_VERSION = 1
export const INSTANCE_ID_LENGTH = 16
export const HEADER_LENGTH = 2 + INSTANCE_ID_LENGTH

export const EnvelopeKind = {
  Text: 1,
  Binary: 2,
  PresenceRequest: 3,
  PresenceReply: 4,
  Json: 5,
  History: 6
} as const
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind]

export type PublicationKind = typeof EnvelopeKind.Text | typeof EnvelopeKind.Binary | typeof EnvelopeKind.Json

export type Envelope =
  | { kind: PublicationKind, instance: Buffer, payload: Buffer }
  | { kind: typeof EnvelopeKind.PresenceRequest, instance: Buffer, requestId: number }
  | { kind: typeof EnvelopeKind.PresenceReply, instance: Buffer, requestId: number, count: number }
  | { kind: typeof EnvelopeKind.History, instance: Buffer, epoch: string, offset: number, data: Buffer }

/** Longest epoch a history publication may carry (the contract's bound). */
export const MAX_EPOCH_LENGTH = 64
const SPACE = 0x20

function header (kind: EnvelopeKind, instance: Buffer, bodyLength: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + bodyLength)
  out[0] = ENVELOPE_VERSION
  out[1] = kind
  instance.copy(out, 2, 0, INSTANCE_ID_LENGTH)
  return out
}

/** A publication's envelope: one copy of the payload behind an 18-byte header. */
export function encodePublication (instance: Buffer, payload: Buffer, kind: PublicationKind): Buffer {
  const out = header(kind, instance, payload.length)
  payload.copy(out, HEADER_LENGTH)
  return out
}

export function encodePresenceRequest (instance: Buffer, requestId: number): Buffer {
  const out = header(EnvelopeKind.PresenceRequest, instance, 4)
  out.writeUInt32BE(requestId, HEADER_LENGTH)
  return out
}

export function encodePresenceReply (instance: Buffer, requestId: number, count: number): Buffer {
  const out = header(EnvelopeKind.PresenceReply, instance, 8)
  out.writeUInt32BE(requestId, HEADER_LENGTH)
  out.writeUInt32BE(Math.min(count, 0xffffffff), HEADER_LENGTH + 4)
  return out
}

/**
 * The 18 bytes before a history publication's body: the Lua script appends the body itself
 * (it alone knows the offset).
 */
export function historyHeader (instance: Buffer): Buffer {
  return header(EnvelopeKind.History, instance, 0)
}

/** A history publication's envelope, as the Lua script writes it (the decoder's counterpart). */
export function encodeHistoryPublication (instance: Buffer, epoch: string, offset: number, data: string): Buffer {
  return Buffer.concat([historyHeader(instance), Buffer.from(`${epoch} ${offset} ${data}`)])
}

/** `<epoch> <offset> <data>` after the header, or null when it is not that. */
function decodeHistory (instance: Buffer, bytes: Buffer): Envelope | null {
  const afterEpoch = bytes.indexOf(SPACE, HEADER_LENGTH)
  const epochLength = afterEpoch - HEADER_LENGTH
  if (epochLength < 1 || epochLength > MAX_EPOCH_LENGTH) return null
  const afterOffset = bytes.indexOf(SPACE, afterEpoch + 1)
  // a safe integer has at most 16 digits; no sign, no leading zero
  if (afterOffset < afterEpoch + 2 || afterOffset > afterEpoch + 17 || bytes[afterEpoch + 1] === 0x30) return null
  let offset = 0
  for (let i = afterEpoch + 1; i < afterOffset; i++) {
    const digit = bytes[i] - 0x30
    if (digit < 0 || digit > 9) return null
    offset = offset * 10 + digit
  }
  if (!Number.isSafeInteger(offset)) return null
  return { kind: EnvelopeKind.History, instance, epoch: bytes.toString('utf8', HEADER_LENGTH, afterEpoch), offset, data: bytes.subarray(afterOffset + 1) }
}

/** The envelope in `bytes`, or null when they are not one this version writes (never throws). */
export function decodeEnvelope (bytes: Buffer): Envelope | null {
  if (bytes.length < HEADER_LENGTH || bytes[0] !== ENVELOPE_VERSION) return null
  const instance = bytes.subarray(2, HEADER_LENGTH)
  const kind = bytes[1]
  switch (kind) {
    case EnvelopeKind.Text:
    case EnvelopeKind.Binary:
    case EnvelopeKind.Json:
      return { kind, instance, payload: bytes.subarray(HEADER_LENGTH) }
    case EnvelopeKind.PresenceRequest:
      if (bytes.length !== HEADER_LENGTH + 4) return null
      return { kind, instance, requestId: bytes.readUInt32BE(HEADER_LENGTH) }
    case EnvelopeKind.PresenceReply:
      if (bytes.length !== HEADER_LENGTH + 8) return null
      return { kind, instance, requestId: bytes.readUInt32BE(HEADER_LENGTH), count: bytes.readUInt32BE(HEADER_LENGTH + 4) }
    case EnvelopeKind.History:
      return decodeHistory(instance, bytes)
    default:
      return null
  }
}
