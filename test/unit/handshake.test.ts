// lib/protocol/handshake.ts: the server's opening handshake (RFC 6455 §4.2) and §1.3's example.
import t from 'tap'
import {
  acceptHeaders, acceptKey, buildAcceptResponse, isValidKey, isWebSocketUpgrade, selectProtocol, validateHandshake, type HandshakeRequest
} from '../../lib/protocol/handshake.js'
import { HandshakeError } from '../../lib/protocol/errors.js'

const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='

function request (headers: Record<string, string | string[] | undefined> = {}, over: Partial<HandshakeRequest> = {}): HandshakeRequest {
  const base: Record<string, string | string[] | undefined> = {
    host: 'server.example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': KEY,
    'sec-websocket-version': '13'
  }
  for (const [k, v] of Object.entries(headers)) base[k] = v
  for (const k of Object.keys(base)) if (base[k] === undefined) delete base[k]
  return { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: base, ...over }
}

/** The HandshakeError a request is refused with, as plain values. */
function refusal (req: HandshakeRequest): { code: string, statusCode: number, headers: Record<string, string> } | 'accepted' {
  try {
    validateHandshake(req)
    return 'accepted'
  } catch (err) {
    if (!(err instanceof HandshakeError)) throw err
    return { code: err.code, statusCode: err.statusCode, headers: { ...err.headers } }
  }
}

t.test('RFC 6455 §1.3: the example key and its accept value', async (t) => {
  t.equal(acceptKey(KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  const head = buildAcceptResponse(KEY)
  t.equal(head, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n')
  const withAll = buildAcceptResponse(KEY, { protocol: 'chat', extensions: 'permessage-deflate', headers: { 'x-extra': '1' } })
  t.match(withAll, /\r\nSec-WebSocket-Protocol: chat\r\n/)
  t.match(withAll, /\r\nSec-WebSocket-Extensions: permessage-deflate\r\n/)
  t.match(withAll, /\r\nx-extra: 1\r\n\r\n$/)
  // without extra headers the head is written directly: the same lines as acceptHeaders gives
  const lines = (headers: Record<string, string>): string =>
    'HTTP/1.1 101 Switching Protocols\r\n' + Object.keys(headers).map((name) => `${name}: ${headers[name]}\r\n`).join('') + '\r\n'
  for (const answer of [{}, { protocol: 'chat' }, { extensions: 'permessage-deflate' }, { protocol: 'chat', extensions: 'permessage-deflate', headers: {} }]) {
    t.equal(buildAcceptResponse(KEY, answer), lines(acceptHeaders(KEY, answer)), JSON.stringify(answer))
  }
})

t.test('a valid request is accepted', async (t) => {
  t.same(validateHandshake(request()), { key: KEY, protocols: [], extensions: undefined })
  t.ok(isWebSocketUpgrade(request()))
  t.same(validateHandshake(request({}, { httpVersionMajor: 2, httpVersionMinor: 0 })).key, KEY, 'HTTP/2-style version numbers pass the version check')
})

t.test('rejections: status, code and corrective headers', async (t) => {
  const cases: Array<[string, HandshakeRequest, { code: string, statusCode: number, headers?: Record<string, string> }]> = [
    ['POST', request({}, { method: 'POST' }), { code: 'WS_ERR_HANDSHAKE_METHOD', statusCode: 405, headers: { allow: 'GET' } }],
    ['HEAD', request({}, { method: 'HEAD' }), { code: 'WS_ERR_HANDSHAKE_METHOD', statusCode: 405 }],
    ['no method', request({}, { method: undefined }), { code: 'WS_ERR_HANDSHAKE_METHOD', statusCode: 405 }],
    ['HTTP/1.0', request({}, { httpVersionMinor: 0 }), { code: 'WS_ERR_HANDSHAKE_HTTP_VERSION', statusCode: 400 }],
    ['HTTP/0.9', request({}, { httpVersionMajor: 0, httpVersionMinor: 9 }), { code: 'WS_ERR_HANDSHAKE_HTTP_VERSION', statusCode: 400 }],
    ['no Upgrade header', request({ upgrade: undefined }), { code: 'WS_ERR_UPGRADE_REQUIRED', statusCode: 426, headers: { upgrade: 'websocket', connection: 'Upgrade' } }],
    ['Upgrade: h2c', request({ upgrade: 'h2c' }), { code: 'WS_ERR_UPGRADE_REQUIRED', statusCode: 426 }],
    ['Upgrade: websocket2', request({ upgrade: 'websocket2' }), { code: 'WS_ERR_UPGRADE_REQUIRED', statusCode: 426 }],
    ['Upgrade: websocket/13 (a version RFC 6455 does not name)', request({ upgrade: 'websocket/13' }), { code: 'WS_ERR_UPGRADE_REQUIRED', statusCode: 426 }],
    ['Upgrade: foo/2 websocket (no comma)', request({ upgrade: 'foo/2 websocket' }), { code: 'WS_ERR_UPGRADE_REQUIRED', statusCode: 426 }],
    ['Upgrade: foo/, websocket (malformed list)', request({ upgrade: 'foo/, websocket' }), { code: 'WS_ERR_UPGRADE_REQUIRED', statusCode: 426 }],
    ['no Connection header', request({ connection: undefined }), { code: 'WS_ERR_HANDSHAKE_CONNECTION', statusCode: 400 }],
    ['Connection: keep-alive', request({ connection: 'keep-alive' }), { code: 'WS_ERR_HANDSHAKE_CONNECTION', statusCode: 400 }],
    ['Connection: upgrades', request({ connection: 'upgrades' }), { code: 'WS_ERR_HANDSHAKE_CONNECTION', statusCode: 400 }],
    ['Connection not a token list', request({ connection: 'Upgrade;q=1' }), { code: 'WS_ERR_HANDSHAKE_CONNECTION', statusCode: 400 }],
    ['no Host', request({ host: undefined }), { code: 'WS_ERR_HANDSHAKE_HOST', statusCode: 400 }],
    ['empty Host', request({ host: '' }), { code: 'WS_ERR_HANDSHAKE_HOST', statusCode: 400 }],
    ['no version', request({ 'sec-websocket-version': undefined }), { code: 'WS_ERR_HANDSHAKE_VERSION', statusCode: 426, headers: { 'sec-websocket-version': '13' } }],
    ['version 8', request({ 'sec-websocket-version': '8' }), { code: 'WS_ERR_HANDSHAKE_VERSION', statusCode: 426, headers: { 'sec-websocket-version': '13' } }],
    ['version 13, 8', request({ 'sec-websocket-version': '13, 8' }), { code: 'WS_ERR_HANDSHAKE_VERSION', statusCode: 426 }],
    ['version 14', request({ 'sec-websocket-version': '14' }), { code: 'WS_ERR_HANDSHAKE_VERSION', statusCode: 426 }],
    ['no key', request({ 'sec-websocket-key': undefined }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['empty key', request({ 'sec-websocket-key': '' }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['key not base64', request({ 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25j!Q==' }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['key of 15 bytes', request({ 'sec-websocket-key': Buffer.alloc(15, 1).toString('base64') }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['key of 17 bytes', request({ 'sec-websocket-key': Buffer.alloc(17, 1).toString('base64') }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['key of 16 bytes without padding', request({ 'sec-websocket-key': KEY.slice(0, 22) }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['key with non-zero padding bits', request({ 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZR==' }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['key base64url', request({ 'sec-websocket-key': 'dGhlIHNhbXBsZSBub2-_ZQ==' }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['two keys', request({ 'sec-websocket-key': [KEY, KEY] }), { code: 'WS_ERR_HANDSHAKE_KEY', statusCode: 400 }],
    ['malformed protocol list', request({ 'sec-websocket-protocol': 'chat, "quoted"' }), { code: 'WS_ERR_HANDSHAKE_PROTOCOL', statusCode: 400 }],
    ['protocol with a space inside', request({ 'sec-websocket-protocol': 'chat v2' }), { code: 'WS_ERR_HANDSHAKE_PROTOCOL', statusCode: 400 }]
  ]
  for (const [name, req, want] of cases) {
    const got = refusal(req)
    t.not(got, 'accepted', name)
    if (got === 'accepted') continue
    t.equal(got.code, want.code, `${name}: code`)
    t.equal(got.statusCode, want.statusCode, `${name}: status ${want.statusCode}`)
    if (want.headers !== undefined) t.same(got.headers, want.headers, `${name}: headers`)
  }
  t.notOk(isWebSocketUpgrade(request({ upgrade: undefined })), 'a plain GET is not an upgrade')
})

t.test('accepted variants: token lists and case-insensitivity', async (t) => {
  const ok: Array<[string, HandshakeRequest]> = [
    ['Connection: keep-alive, Upgrade (Firefox)', request({ connection: 'keep-alive, Upgrade' })],
    ['Connection: Upgrade, keep-alive', request({ connection: 'Upgrade, keep-alive' })],
    ['Connection: upgrade (lower case)', request({ connection: 'upgrade' })],
    ['Connection: UPGRADE', request({ connection: 'UPGRADE' })],
    ['Connection with OWS and empty elements', request({ connection: ' , keep-alive ,\tUpgrade , ' })],
    ['Upgrade: WebSocket', request({ upgrade: 'WebSocket' })],
    ['Upgrade: WEBSOCKET', request({ upgrade: 'WEBSOCKET' })],
    ['Upgrade list', request({ upgrade: 'h2c, websocket' })],
    ['Upgrade: foo/2, websocket (RFC 9110 §7.8 product/version)', request({ upgrade: 'foo/2, websocket' })],
    ['Upgrade: websocket, foo/2', request({ upgrade: 'websocket, foo/2' })],
    ['Upgrade: HTTP/2.0, SHTTP/1.3, WebSocket', request({ upgrade: 'HTTP/2.0, SHTTP/1.3, WebSocket' })],
    ['Upgrade with OWS and empty elements', request({ upgrade: ' , foo/2 ,\twebsocket , ' })],
    ['Upgrade as an array (joined)', request({ upgrade: ['foo/2', 'websocket'] })],
    ['version with OWS', request({ 'sec-websocket-version': ' 13 ' })],
    ['key with OWS', request({ 'sec-websocket-key': ` ${KEY}\t` })],
    ['headers as arrays (joined)', request({ connection: ['keep-alive', 'Upgrade'] })],
    ['HTTP/1.2', request({}, { httpVersionMinor: 2 })]
  ]
  for (const [name, req] of ok) t.equal(refusal(req), 'accepted', name)
  t.ok(isWebSocketUpgrade(request({ upgrade: 'foo/2, websocket' })), 'a product/version token before websocket is still an upgrade')
  t.equal(validateHandshake(request({ 'sec-websocket-key': ` ${KEY}\t` })).key, KEY, 'the key is trimmed')
  // random 16-byte keys are always valid, and their accept values are 28 characters of base64
  for (let i = 0; i < 200; i++) {
    const key = Buffer.from(Array.from({ length: 16 }, (_, j) => (i * 31 + j * 17) & 0xff)).toString('base64')
    if (!isValidKey(key)) t.fail(`valid key refused: ${key}`)
  }
  t.equal(acceptKey('AQIDBAUGBwgJCgsMDQ4PEA==').length, 28)
})

t.test('subprotocols: offers in the client\'s order, selection, no match', async (t) => {
  const v = validateHandshake(request({ 'sec-websocket-protocol': 'chat, superchat ,\tv2.json' }))
  t.same(v.protocols, ['chat', 'superchat', 'v2.json'])
  t.same(validateHandshake(request({ 'sec-websocket-protocol': ['a', 'b, c'] })).protocols, ['a', 'b', 'c'], 'repeated headers')
  t.same(validateHandshake(request({ 'sec-websocket-protocol': '' })).protocols, [], 'empty header: no offers')
  t.equal(selectProtocol(['chat', 'superchat'], ['superchat', 'chat']), 'chat', 'the client\'s preference wins')
  t.equal(selectProtocol(['x', 'superchat'], ['superchat', 'chat']), 'superchat')
  t.equal(selectProtocol(['x', 'y'], ['chat']), undefined, 'no match: no Sec-WebSocket-Protocol in the 101')
  t.equal(selectProtocol([], ['chat']), undefined)
  t.equal(selectProtocol(['Chat'], ['chat']), undefined, 'subprotocol names are case-sensitive')
  t.equal(selectProtocol(['__proto__', 'constructor'], ['constructor']), 'constructor', 'prototype names are plain strings')
  const ext = validateHandshake(request({ 'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits' }))
  t.equal(ext.extensions, 'permessage-deflate; client_max_window_bits', 'extensions are handed on raw')
})

t.test('RFC 8441 §5: an extended CONNECT is validated without key, Upgrade or Connection', async (t) => {
  const { validateExtendedConnect, responseHeaders, acceptHeaders } = await import('../../lib/protocol/handshake.js')
  const h2 = (headers: Record<string, string> = {}): { headers: Record<string, string> } => ({
    headers: { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/chat', ':authority': 'server.example.com', 'sec-websocket-version': '13', ...headers }
  })
  // the §5.1 example request
  t.same(validateExtendedConnect(h2({ 'sec-websocket-protocol': 'chat, superchat', 'sec-websocket-extensions': 'permessage-deflate', origin: 'http://www.example.com' })),
    { key: undefined, protocols: ['chat', 'superchat'], extensions: 'permessage-deflate' })
  const codeOf = (headers: Record<string, string>): unknown => {
    try { validateExtendedConnect(h2(headers)); return null } catch (err) { return { code: (err as { code: string }).code, statusCode: (err as { statusCode: number }).statusCode } }
  }
  t.same(codeOf({ ':protocol': 'webtransport' }), { code: 'WS_ERR_HANDSHAKE_CONNECT_PROTOCOL', statusCode: 501 }, 'another :protocol')
  t.same(codeOf({ 'sec-websocket-version': '8' }), { code: 'WS_ERR_HANDSHAKE_VERSION', statusCode: 426 }, 'the version rule of RFC 6455 applies')
  t.same(codeOf({ 'sec-websocket-protocol': 'a b' }), { code: 'WS_ERR_HANDSHAKE_PROTOCOL', statusCode: 400 }, 'so does the subprotocol syntax')
  const noPath = h2()
  delete noPath.headers[':path']
  t.throws(() => validateExtendedConnect(noPath), { code: 'WS_ERR_HANDSHAKE_CONNECT_TARGET', statusCode: 400 }, '§4: :path MUST be included')
  // the answer as headers: no Upgrade/Connection/accept for HTTP/2; HTTP/1.1 adds them
  t.same(responseHeaders({ protocol: 'chat' }), { 'Sec-WebSocket-Protocol': 'chat' })
  t.same(acceptHeaders(KEY, { protocol: 'chat' }), { Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Accept': 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'Sec-WebSocket-Protocol': 'chat' })
})
