/** What an outgoing value is sent as: send() and broadcast() accept the same values. */

export type PayloadKind = 'text' | 'binary' | 'json'

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
  throw new TypeError(`${caller}() takes a string, Buffer, ArrayBuffer, typed array, DataView, or a plain object/array (sent as JSON)`)
}
