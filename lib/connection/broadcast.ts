/**
 * Broadcast: frame a message once and write the same bytes to every socket.
 *
 * A server's frames are unmasked (RFC 6455 §5.1: "A server MUST NOT mask any frames that it
 * sends to the client"), so one encoded frame is valid on every connection. Each socket still
 * applies its own rules: a socket that is not open is skipped, its maxBufferedAmount policy
 * applies, and a socket that negotiated permessage-deflate compresses its own copy when the
 * message reaches its threshold (its compression context is its own).
 *
 * A plain object or array is serialized by each socket's own serializer (its route's
 * `schema.outbound`, else JSON.stringify), once per distinct serializer: a broadcast never
 * sends what a socket's schema would strip.
 */
import { isUtf8 } from 'node:buffer'
import { Opcode } from '../protocol/constants.js'
import { argumentError } from '../protocol/errors.js'
import { encodeHeader, headerSize } from '../protocol/frame.js'
import { toBuffer } from '../protocol/protocol.js'
import type { WebSocket } from './connection.js'
import { kSerialize, type PayloadKind, payloadKind } from './payload.js'

type Serializer = (value: unknown) => string

/** A message framed once, ready to be written to many sockets. */
export class PreparedMessage {
  /** the whole frame: header and payload */
  readonly frame: Buffer
  /** the payload, as given (a string for text given as a string) */
  readonly payload: string | Buffer
  /** the payload's bytes (a view of the frame) */
  readonly bytes: Buffer
  readonly binary: boolean

  /**
   * `options.binary` forces the opcode, as send()'s does: a string goes as its UTF-8 bytes, and
   * bytes sent as text must be valid UTF-8 (RFC 6455 §8.1), else FST_ERR_WS_INVALID_UTF8.
   */
  constructor (data: string | Buffer | ArrayBuffer | ArrayBufferView, options?: { binary?: boolean }) {
    const binary = options?.binary ?? typeof data !== 'string'
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : toBuffer(data)
    if (!binary && typeof data !== 'string' && !isUtf8(bytes)) {
      throw argumentError('type', 'FST_ERR_WS_INVALID_UTF8', 'bytes sent as a text message (binary: false) must be valid UTF-8')
    }
    const frame = Buffer.allocUnsafe(headerSize(bytes.length, false) + bytes.length)
    const offset = encodeHeader(frame, 0, { fin: true, rsv: 0, opcode: binary ? Opcode.Binary : Opcode.Text, payloadLength: bytes.length })
    bytes.copy(frame, offset)
    this.frame = frame
    this.bytes = frame.subarray(offset)
    this.payload = binary || typeof data !== 'string' ? this.bytes : data
    this.binary = binary
  }
}

/**
 * One message for many sockets: framed on first use, once, or for a plain object or array once
 * per distinct serializer among the sockets it goes to.
 */
export class Fanout {
  private readonly data: unknown
  private readonly kind: PayloadKind
  private readonly binary: boolean | undefined
  /** JSON text of `data` made by JSON.stringify, when known (a publication from another process) */
  private jsonText: string | undefined
  private lastSerialize: Serializer | undefined = undefined
  private last: PreparedMessage | undefined = undefined
  private bySerializer: Map<Serializer, PreparedMessage> | undefined = undefined

  constructor (data: unknown, kind: PayloadKind, options: { binary?: boolean, jsonText?: string } = {}) {
    this.data = data
    this.kind = kind
    this.binary = options.binary
    this.jsonText = options.jsonText
  }

  /** Parse a JSON publication's text once, for the sockets whose serializer is not JSON.stringify. */
  static fromJsonText (text: string): Fanout {
    return new Fanout(undefined, 'json', { jsonText: text })
  }

  /** The frame of a string or bytes (not of a plain object: see for()). */
  frame (): PreparedMessage {
    return this.last ??= new PreparedMessage(this.data as string | Buffer, { binary: this.binary })
  }

  /** The frame `socket` receives. */
  for (socket: WebSocket): PreparedMessage {
    if (this.kind !== 'json') return this.frame()
    const serialize = socket[kSerialize]
    if (serialize === this.lastSerialize) return this.last!
    let message = this.bySerializer?.get(serialize)
    if (message === undefined) message = new PreparedMessage(this.serialized(serialize), { binary: this.binary ?? false })
    if (this.lastSerialize !== undefined) (this.bySerializer ??= new Map()).set(this.lastSerialize, this.last!)
    this.lastSerialize = serialize
    this.last = message
    return message
  }

  /** The JSON text, as the default serializer makes it (what crosses to other processes). */
  text (): string {
    return this.jsonText ??= JSON.stringify(this.data)
  }

  private serialized (serialize: Serializer): string {
    if (serialize === JSON.stringify) return this.text()
    // a serializer compiled from the route's schema.outbound: it keeps what the schema allows
    return serialize(this.data === undefined ? JSON.parse(this.jsonText as string) : this.data)
  }

  /** Write the message to every socket but `except`; returns how many accepted it. */
  sendTo (sockets: Iterable<WebSocket>, except: WebSocket | undefined): number {
    let accepted = 0
    for (const socket of sockets) {
      if (socket === except) continue
      if (socket.sendPrepared(this.for(socket))) accepted++
    }
    return accepted
  }
}

export interface BroadcastOptions {
  /** a socket not to send to (typically the sender) */
  except?: WebSocket
}

/**
 * Send one message to many sockets, framing it once: a string as text, bytes as binary, a plain
 * object or array as JSON text (serialized once per distinct serializer: each socket's route's
 * `schema.outbound`, else JSON.stringify). Returns how many sockets accepted it.
 */
export function broadcast (
  sockets: Iterable<WebSocket>,
  data: string | Buffer | ArrayBuffer | ArrayBufferView | object | PreparedMessage,
  options: BroadcastOptions = {}
): number {
  if (data instanceof PreparedMessage) {
    let accepted = 0
    for (const socket of sockets) {
      if (socket === options.except) continue
      if (socket.sendPrepared(data)) accepted++
    }
    return accepted
  }
  return new Fanout(data, payloadKind(data, 'broadcast')).sendTo(sockets, options.except)
}
