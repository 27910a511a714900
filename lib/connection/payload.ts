/**
 * What an outgoing value is sent as, and send()'s options: send(), broadcast() and publish()
 * accept the same values. Every check throws at the call with a stable code.
 */
import { argumentError } from '../protocol/errors.js'

export type PayloadKind = 'text' | 'binary' | 'json'

/** A connection's serializer of plain objects and arrays (its route's schema.outbound, else JSON.stringify). */
export const kSerialize: unique symbol = Symbol('fastify-rfc6455.serialize')

function isPlainObject (value: object): boolean {
  if (Array.isArray(value)) return true
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * A string is text; a Buffer, ArrayBuffer, typed array or DataView is binary; a plain object or
 * array is JSON text. Anything else is a TypeError: never coerced or uninitialised bytes.
 */
export function payloadKind (data: unknown, caller: string): PayloadKind {
  if (typeof data === 'string') return 'text'
  if (data !== null && typeof data === 'object') {
    if (Buffer.isBuffer(data) || data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return 'binary'
    if (isPlainObject(data)) return 'json'
  }
  throw argumentError('type', 'FST_ERR_WS_INVALID_DATA', `${caller}() takes a string, Buffer, ArrayBuffer, typed array, DataView, or a plain object/array (sent as JSON)`)
}

/** send()'s options, packed in an integer (no object per call). */
export const SendFlag = {
  /** `binary` was given: it decides the opcode */
  BinarySet: 1,
  Binary: 1 << 1,
  /** `compress: false` */
  NoCompress: 1 << 2,
  /** `fin: false`: more fragments of this message follow */
  More: 1 << 3
} as const

function optionError (message: string): Error {
  return argumentError('type', 'FST_ERR_WS_INVALID_SEND_OPTIONS', `send() options: ${message}`)
}

function booleanOption (options: Record<string, unknown>, name: string): boolean | undefined {
  const value = options[name]
  if (value !== undefined && typeof value !== 'boolean') throw optionError(`${name} must be a boolean`)
  return value
}

/**
 * Check ws's send options `{ binary, compress, fin, mask }` and pack them (SendFlag). Names ws
 * does not know are ignored, as ws does. `mask` must match the role: RFC 6455 §5.1 "A server
 * MUST NOT mask any frames that it sends to the client" and §5.3 a client masks every frame.
 */
export function sendFlags (options: unknown, role: 'server' | 'client'): number {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw optionError('must be an object { binary, compress, fin, mask }')
  const o = options as Record<string, unknown>
  const binary = booleanOption(o, 'binary')
  const compress = booleanOption(o, 'compress')
  const fin = booleanOption(o, 'fin')
  const mask = booleanOption(o, 'mask')
  if (mask !== undefined && mask !== (role === 'client')) {
    throw argumentError('range', 'FST_ERR_WS_MASK_REFUSED', role === 'server'
      ? 'a server must not mask its frames (RFC 6455 §5.1): mask: true is refused'
      : 'a client masks every frame (RFC 6455 §5.3): mask: false is refused')
  }
  let flags = 0
  if (binary !== undefined) flags |= binary ? SendFlag.BinarySet | SendFlag.Binary : SendFlag.BinarySet
  if (compress === false) flags |= SendFlag.NoCompress
  if (fin === false) flags |= SendFlag.More
  return flags
}

export function callbackError (): Error {
  return argumentError('type', 'FST_ERR_WS_INVALID_CALLBACK', 'the send() callback must be a function')
}
