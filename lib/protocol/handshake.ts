/**
 * The server's side of the opening handshake (RFC 6455 §4.2): validate the client's request,
 * compute Sec-WebSocket-Accept, choose a subprotocol and build the 101 response.
 */
import * as crypto from 'node:crypto'
import { GUID } from './constants.js'
import { HandshakeError } from './errors.js'
import { hasProtocol, hasToken, parseTokenList } from './header-tokens.js'

/** The parts of an HTTP request the handshake reads (Node's IncomingMessage fits). */
export interface HandshakeRequest {
  method?: string | undefined
  httpVersionMajor: number
  httpVersionMinor: number
  headers: Record<string, string | string[] | undefined>
}

export interface ValidHandshake {
  key: string
  /** subprotocols offered by the client, in its order of preference */
  protocols: string[]
  /** raw Sec-WebSocket-Extensions value, if any */
  extensions: string | undefined
}

export const HandshakeErrorCode = {
  Method: 'WS_ERR_HANDSHAKE_METHOD',
  HttpVersion: 'WS_ERR_HANDSHAKE_HTTP_VERSION',
  Upgrade: 'WS_ERR_HANDSHAKE_UPGRADE',
  Connection: 'WS_ERR_HANDSHAKE_CONNECTION',
  Host: 'WS_ERR_HANDSHAKE_HOST',
  Key: 'WS_ERR_HANDSHAKE_KEY',
  Version: 'WS_ERR_HANDSHAKE_VERSION',
  Protocol: 'WS_ERR_HANDSHAKE_PROTOCOL',
  NotUpgrade: 'WS_ERR_UPGRADE_REQUIRED'
} as const

function single (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

function badRequest (code: string, message: string): HandshakeError {
  return new HandshakeError(code, 400, message)
}

/** §4.1: the key is base64 of 16 bytes: 22 base64 characters followed by "==". */
export function isValidKey (key: string): boolean {
  if (key.length !== 24 || key.charCodeAt(22) !== 0x3d || key.charCodeAt(23) !== 0x3d) return false
  for (let i = 0; i < 22; i++) {
    const c = key.charCodeAt(i)
    const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f
    if (!ok) return false
  }
  // the last character before "==" carries 2 bits of data and 4 zero bits: one of AQgw
  const last = key[21]
  return last === 'A' || last === 'Q' || last === 'g' || last === 'w'
}

/**
 * True when the request asks for a WebSocket upgrade at all (so not a plain GET).
 * RFC 6455 §4.2.1 (3): "An |Upgrade| header field containing the value "websocket", treated as
 * an ASCII case-insensitive value." The header is a list of protocols, each with an optional
 * "/version" (RFC 9110 §7.8), so "foo/2, websocket" contains it; "websocket/13", a value
 * RFC 6455 does not name, does not.
 */
export function isWebSocketUpgrade (req: HandshakeRequest): boolean {
  return hasProtocol(single(req.headers.upgrade), 'websocket')
}

/** Validate a client's opening handshake (§4.2.1). Throws HandshakeError with the HTTP answer. */
export function validateHandshake (req: HandshakeRequest): ValidHandshake {
  // §4.2.1 (1): "An HTTP/1.1 or higher GET request"
  if (req.method !== 'GET') {
    return fail(new HandshakeError(HandshakeErrorCode.Method, 405, 'WebSocket upgrade requires GET', { allow: 'GET' }))
  }
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) {
    return fail(badRequest(HandshakeErrorCode.HttpVersion, 'WebSocket upgrade requires HTTP/1.1 or later'))
  }
  const headers = req.headers
  // §4.2.1 (3): "An |Upgrade| header field containing the value "websocket""
  if (!isWebSocketUpgrade(req)) {
    return fail(new HandshakeError(HandshakeErrorCode.NotUpgrade, 426, 'this resource requires a WebSocket upgrade', { upgrade: 'websocket', connection: 'Upgrade' }))
  }
  // §4.2.1 (4): "A |Connection| header field that includes the token "Upgrade""
  if (!hasToken(single(headers.connection), 'upgrade')) {
    return fail(badRequest(HandshakeErrorCode.Connection, 'Connection header must include "Upgrade"'))
  }
  // §4.2.1 (2): "A |Host| header field containing the server's authority."
  const host = single(headers.host)
  if (host === undefined || host.length === 0) {
    return fail(badRequest(HandshakeErrorCode.Host, 'missing Host header'))
  }
  // §4.2.1 (6): "A |Sec-WebSocket-Version| header field, with a value of 13."
  // §4.4: otherwise the server answers with the versions it speaks (426 is what browsers expect)
  const version = single(headers['sec-websocket-version'])
  if (version === undefined || version.trim() !== '13') {
    return fail(new HandshakeError(HandshakeErrorCode.Version, 426, 'unsupported Sec-WebSocket-Version (13 is supported)', { 'sec-websocket-version': '13' }))
  }
  // §4.2.1 (5): base64 that "when decoded, is 16 bytes in length"
  const key = headers['sec-websocket-key']
  if (typeof key !== 'string' || !isValidKey(key.trim())) {
    return fail(badRequest(HandshakeErrorCode.Key, 'Sec-WebSocket-Key must be base64 of 16 bytes'))
  }
  let protocols: string[] = []
  const protocolHeader = single(headers['sec-websocket-protocol'])
  if (protocolHeader !== undefined) {
    const list = parseTokenList(protocolHeader)
    if (list === null) return fail(badRequest(HandshakeErrorCode.Protocol, 'malformed Sec-WebSocket-Protocol header'))
    protocols = list
  }
  return { key: key.trim(), protocols, extensions: single(headers['sec-websocket-extensions']) }
}

function fail (error: HandshakeError): never {
  throw error
}

const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64') => string }).hash

/** §4.2.2 (5.4): base64(SHA-1(key + GUID)). */
export function acceptKey (key: string): string {
  // one-shot crypto.hash (Node >= 20.12) is ~2x faster than a Hash object; older Node: createHash
  return oneShotHash !== undefined ? oneShotHash('sha1', key + GUID, 'base64') : crypto.createHash('sha1').update(key + GUID).digest('base64')
}

/**
 * The subprotocol to answer with: the first client-offered one (client preference order) that
 * the server supports. `undefined` means the 101 carries no Sec-WebSocket-Protocol (§4.2.2: "If
 * the server does not wish to agree to one of the suggested subprotocols, it MUST NOT send back
 * a |Sec-WebSocket-Protocol| header field").
 */
export function selectProtocol (offered: readonly string[], supported: readonly string[]): string | undefined {
  for (const p of offered) if (supported.includes(p)) return p
  return undefined
}

/** The 101 response head (§4.2.2 (5)). Header values must already be valid. */
export function buildAcceptResponse (key: string, options: { protocol?: string | undefined, extensions?: string | undefined, headers?: Record<string, string> | undefined } = {}): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n`
  if (options.protocol !== undefined) head += `Sec-WebSocket-Protocol: ${options.protocol}\r\n`
  if (options.extensions !== undefined) head += `Sec-WebSocket-Extensions: ${options.extensions}\r\n`
  if (options.headers !== undefined) {
    for (const name of Object.keys(options.headers)) head += `${name}: ${options.headers[name]}\r\n`
  }
  return head + '\r\n'
}
