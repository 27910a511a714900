/**
 * Broadcast: frame a message once and write the same bytes to every socket.
 *
 * A server's frames are unmasked (RFC 6455 §5.1: "A server MUST NOT mask any frames that it
 * sends to the client"), so one encoded frame is valid on every connection. Each socket still
 * applies its own rules: a socket that is not open is skipped, its maxBufferedAmount policy
 * applies, and a socket that negotiated permessage-deflate compresses its own copy when the
 * message reaches its threshold (its compression context is its own).
 */
import { Opcode } from '../protocol/constants.js'
import { encodeHeader, headerSize } from '../protocol/frame.js'
import { toBuffer } from '../protocol/protocol.js'
import type { WebSocket } from './connection.js'
import { payloadKind } from './payload.js'

/** A message framed once, ready to be written to many sockets. */
export class PreparedMessage {
  /** the whole frame: header and payload */
  readonly frame: Buffer
  /** the payload, as given (a string for text) */
  readonly payload: string | Buffer
  readonly binary: boolean

  constructor (data: string | Buffer | ArrayBuffer | ArrayBufferView) {
    const binary = typeof data !== 'string'
    const bytes = binary ? toBuffer(data) : Buffer.from(data, 'utf8')
    const frame = Buffer.allocUnsafe(headerSize(bytes.length, false) + bytes.length)
    const offset = encodeHeader(frame, 0, { fin: true, rsv: 0, opcode: binary ? Opcode.Binary : Opcode.Text, payloadLength: bytes.length })
    bytes.copy(frame, offset)
    this.frame = frame
    this.payload = binary ? bytes : data
    this.binary = binary
  }
}

export interface BroadcastOptions {
  /** a socket not to send to (typically the sender) */
  except?: WebSocket
}

/**
 * Send one message to many sockets, framing it once: a string as text, bytes as binary, a plain
 * object or array as JSON text (serialized once with JSON.stringify). Returns how many sockets
 * accepted it.
 */
export function broadcast (
  sockets: Iterable<WebSocket>,
  data: string | Buffer | ArrayBuffer | ArrayBufferView | object | PreparedMessage,
  options: BroadcastOptions = {}
): number {
  let message: PreparedMessage
  if (data instanceof PreparedMessage) message = data
  else if (payloadKind(data, 'broadcast') === 'json') message = new PreparedMessage(JSON.stringify(data))
  else message = new PreparedMessage(data as string | Buffer | ArrayBuffer | ArrayBufferView)
  let accepted = 0
  for (const socket of sockets) {
    if (socket === options.except) continue
    if (socket.sendPrepared(message)) accepted++
  }
  return accepted
}
