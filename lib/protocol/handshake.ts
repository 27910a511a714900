/**
 * The server's side of the opening handshake, for both HTTP versions:
 *
 * - one negotiation of what the client offers (Sec-WebSocket-Version, -Protocol, -Extensions),
 *   shared by both;
 * - a validator per HTTP version: `validateHandshake` for the HTTP/1.1 Upgrade (RFC 6455 §4.2.1),
 *   `validateExtendedConnect` for an HTTP/2 extended CONNECT (RFC 8441 §4, §5);
 * - the answer as headers (`responseHeaders`, plus `acceptHeaders` for HTTP/1.1's 101), which
 *   each transport writes its own way: a 101 status line on the socket, or a 200 HEADERS frame.
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

/** An HTTP/2 request as Node's compatibility layer gives it: pseudo-headers among the headers. */
export interface ExtendedConnectRequest {
  headers: Record<string, string | string[] | undefined>
}

/** What the client offers, read the same way from both HTTP versions. */
export interface HandshakeOffer {
  /** subprotocols offered by the client, in its order of preference */
  protocols: string[]
  /** raw Sec-WebSocket-Extensions value, if any */
  extensions: string | undefined
}

export interface ValidHandshake extends HandshakeOffer {
  /** Sec-WebSocket-Key; undefined on an extended CONNECT (RFC 8441 §5: no key, no accept) */
  key: string | undefined
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
  NotUpgrade: 'WS_ERR_UPGRADE_REQUIRED',
  /** an extended CONNECT for another protocol than websocket (RFC 8441 §4) */
  ConnectProtocol: 'WS_ERR_HANDSHAKE_CONNECT_PROTOCOL',
  /** an extended CONNECT without :path or :scheme (RFC 8441 §4) */
  ConnectTarget: 'WS_ERR_HANDSHAKE_CONNECT_TARGET'
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
  // §4.2.1 (5): base64 that "when decoded, is 16 bytes in length"
  const key = headers['sec-websocket-key']
  const offer = readOffer(headers)
  if (typeof key !== 'string' || !isValidKey(key.trim())) {
    return fail(badRequest(HandshakeErrorCode.Key, 'Sec-WebSocket-Key must be base64 of 16 bytes'))
  }
  return { key: key.trim(), protocols: offer.protocols, extensions: offer.extensions }
}

/**
 * Validate an HTTP/2 extended CONNECT (RFC 8441). Throws HandshakeError with the HTTP answer.
 * Connection, Upgrade and Sec-WebSocket-Key are not read: §5 "They MUST NOT be included" and
 * "do not do the processing of the Sec-WebSocket-Key and Sec-WebSocket-Accept header fields".
 */
export function validateExtendedConnect (req: ExtendedConnectRequest): ValidHandshake {
  const headers = req.headers
  // RFC 8441 §5: ":protocol ... MUST have a value of "websocket" to initiate a WebSocket connection"
  const protocol = single(headers[':protocol'])
  if (protocol !== 'websocket') {
    return fail(new HandshakeError(HandshakeErrorCode.ConnectProtocol, 501, `extended CONNECT for ${protocol === undefined ? 'no protocol' : JSON.stringify(protocol)} is not implemented (websocket is)`))
  }
  // RFC 8441 §4: "the :scheme and :path pseudo-header fields of the target URI ... MUST also be included"
  if (single(headers[':path']) === undefined || single(headers[':scheme']) === undefined) {
    return fail(badRequest(HandshakeErrorCode.ConnectTarget, 'an extended CONNECT needs :scheme and :path'))
  }
  // §5: "The Origin, Sec-WebSocket-Version, Sec-WebSocket-Protocol, and Sec-WebSocket-Extensions
  // header fields are used in the CONNECT request and response-header fields as defined in [RFC6455]"
  const offer = readOffer(headers)
  return { key: undefined, protocols: offer.protocols, extensions: offer.extensions }
}

/** The negotiation both HTTP versions share: the version, the offered subprotocols and extensions. */
export function readOffer (headers: Record<string, string | string[] | undefined>): HandshakeOffer {
  // §4.2.1 (6): "A |Sec-WebSocket-Version| header field, with a value of 13."
  // §4.4: otherwise the server answers with the versions it speaks (426 is what browsers expect)
  const version = single(headers['sec-websocket-version'])
  if (version === undefined || version.trim() !== '13') {
    return fail(new HandshakeError(HandshakeErrorCode.Version, 426, 'unsupported Sec-WebSocket-Version (13 is supported)', { 'sec-websocket-version': '13' }))
  }
  let protocols: string[] = []
  const protocolHeader = single(headers['sec-websocket-protocol'])
  if (protocolHeader !== undefined) {
    const list = parseTokenList(protocolHeader)
    if (list === null) return fail(badRequest(HandshakeErrorCode.Protocol, 'malformed Sec-WebSocket-Protocol header'))
    protocols = list
  }
  return { protocols, extensions: single(headers['sec-websocket-extensions']) }
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

/** What the server agreed to: the response headers of both HTTP versions. */
export interface HandshakeAnswer {
  protocol?: string | undefined
  extensions?: string | undefined
  headers?: Record<string, string> | undefined
}

/**
 * The response headers both HTTP versions send (§4.2.2 (5.5), (5.6); RFC 8441 §5: "used in the
 * CONNECT request and response-header fields as defined in [RFC6455]"). Values must be valid.
 */
export function responseHeaders (answer: HandshakeAnswer): Record<string, string> {
  const headers: Record<string, string> = {}
  if (answer.protocol !== undefined) headers['Sec-WebSocket-Protocol'] = answer.protocol
  if (answer.extensions !== undefined) headers['Sec-WebSocket-Extensions'] = answer.extensions
  if (answer.headers !== undefined) Object.assign(headers, answer.headers)
  return headers
}

/** HTTP/1.1's 101 headers (§4.2.2 (5)): Upgrade, Connection, Sec-WebSocket-Accept, then the answer's. */
export function acceptHeaders (key: string, answer: HandshakeAnswer = {}): Record<string, string> {
  return { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Accept': acceptKey(key), ...responseHeaders(answer) }
}

/**
 * The 101 response head (§4.2.2 (5)) as HTTP/1.1 bytes. Header values must already be valid.
 * The same lines in the same order as `acceptHeaders`, written without building its objects
 * (once per handshake); answer headers of the same name replace the line in place, as there.
 */
export function buildAcceptResponse (key: string, answer: HandshakeAnswer = {}): string {
  const extra = answer.headers
  if (extra !== undefined) {
    for (const name in extra) {
      if (Object.hasOwn(extra, name)) return headLines(acceptHeaders(key, answer))
    }
  }
  let head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' + acceptKey(key) + '\r\n'
  if (answer.protocol !== undefined) head += 'Sec-WebSocket-Protocol: ' + answer.protocol + '\r\n'
  if (answer.extensions !== undefined) head += 'Sec-WebSocket-Extensions: ' + answer.extensions + '\r\n'
  return head + '\r\n'
}

function headLines (headers: Record<string, string>): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n'
  for (const name of Object.keys(headers)) head += `${name}: ${headers[name]}\r\n`
  return head + '\r\n'
}
