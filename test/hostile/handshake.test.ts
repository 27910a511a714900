// Hostile opening handshakes (issue 5). Each case asserts the exact answer and then proves the
// server still serves another client. What Node's HTTP server bounds before our code runs is
// asserted too (431 for oversized heads, 408 for a head that never completes), with the answer
// of the Node release the suite runs on where that answer changed.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { assertServes, RawClient, server, upgradeRequest } from './helpers.js'

function echo (app: FastifyInstance): void {
  app.ws('/echo', (socket) => {
    socket.on('message', (data: Buffer, binary: boolean) => socket.send(binary ? data : data.toString()))
  })
  app.ws('/chat', { protocols: ['chat', 'superchat'] }, (socket) => {
    socket.send(`protocol=${socket.protocol}`)
  })
}

async function answer (port: number, request: string): Promise<{ status: number, head: string, client: RawClient }> {
  const client = await RawClient.connect(port)
  client.write(request)
  const { status, head } = await client.response()
  return { status, head, client }
}

/**
 * Node's July 2026 security releases (22.23.2, 24.18.1, 26.5.1; CVE-2026-58044) refuse a request
 * with more header fields than `server.maxHeadersCount` with 431 and never run its handler. Earlier
 * releases (all of Node 20, which had reached end of life) kept the first fields and dropped the
 * rest silently, so a request whose Upgrade header was dropped reached the route as plain HTTP.
 */
function refusesExtraHeaders (version = process.versions.node): boolean {
  const [major, minor, patch] = version.split('.').map(Number)
  const fixed: Record<number, [number, number]> = { 22: [23, 2], 24: [18, 1], 26: [5, 1] }
  if (major > 26) return true
  const first = fixed[major]
  if (first === undefined) return false
  return minor > first[0] || (minor === first[0] && patch >= first[1])
}

/**
 * Node answers a request head it refuses and destroys the socket while request bytes are still
 * unread; a TCP close with unread input sends a reset (RFC 1122 §4.2.2.13). Node 24 and 26 clients
 * see that reset after the answer ('error' ECONNRESET), Node 20 and 22 clients a plain end. The
 * raw client ignores socket errors, so this waits for the end of the connection either way.
 */
async function waitEnded (client: RawClient): Promise<void> {
  await client.until(() => client.closed, 5000, 'the server to end the connection')
}

t.test('refusesExtraHeaders: the first release of each line with the header-count fix', async (t) => {
  t.equal(refusesExtraHeaders('20.20.2'), false)
  t.equal(refusesExtraHeaders('22.23.1'), false)
  t.equal(refusesExtraHeaders('22.23.2'), true)
  t.equal(refusesExtraHeaders('22.24.0'), true)
  t.equal(refusesExtraHeaders('24.18.0'), false)
  t.equal(refusesExtraHeaders('24.18.1'), true)
  t.equal(refusesExtraHeaders('26.4.0'), false)
  t.equal(refusesExtraHeaders('26.5.1'), true)
  t.equal(refusesExtraHeaders('27.0.0'), true)
})

t.test('thousands of headers', async (t) => {
  const { app, port, log } = await server({}, echo, { http: { maxHeaderSize: 64 * 1024 } })
  t.teardown(() => app.close())
  const junk = Array.from({ length: 3000 }, (_, i) => `x-junk-${i}: 1`)
  const refused = refusesExtraHeaders()

  // the handshake headers first
  const first = await answer(port, upgradeRequest('/echo', {}).replace(/\r\n\r\n$/, '\r\n' + junk.join('\r\n') + '\r\n\r\n'))
  if (refused) {
    t.equal(first.status, 431, `Node ${process.version} refuses a request over maxHeadersCount: 431`)
    await waitEnded(first.client)
  } else {
    t.equal(first.status, 101, `Node ${process.version} keeps the first fields (the handshake) and drops the rest: upgraded`)
    first.client.socket.destroy()
  }

  // the junk first: the handshake headers are among the fields over the count
  const dropped = await answer(port, upgradeRequest('/echo', {}, junk))
  if (refused) t.equal(dropped.status, 431, `Node ${process.version}: 431, never a 101`)
  else t.equal(dropped.status, 426, `Node ${process.version} dropped Upgrade: 426 Upgrade Required, never a 101`)
  await waitEnded(dropped.client)

  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [], 'no error-level log')
})

t.test('a request head over maxHeaderSize is refused by Node with 431', async (t) => {
  const { app, port } = await server({}, echo)
  t.teardown(() => app.close())
  const junk = Array.from({ length: 5000 }, (_, i) => `x-junk-${i}: 1`)
  const { status, client } = await answer(port, upgradeRequest('/echo', {}, junk))
  t.equal(status, 431)
  await waitEnded(client)
  t.equal(await assertServes(port), 'still alive')
})

t.test('Sec-WebSocket-Protocol: a token, 60 000 spaces, a token', async (t) => {
  const { app, port, log } = await server({}, echo, { http: { maxHeaderSize: 256 * 1024 } })
  t.teardown(() => app.close())
  // a list needs commas: this is two tokens separated by whitespace only, so it is malformed
  const spaced = await answer(port, upgradeRequest('/chat', { 'Sec-WebSocket-Protocol': 'chat' + ' '.repeat(60_000) + 'superchat' }))
  t.equal(spaced.status, 400, 'malformed list: 400')
  t.match(spaced.client.body().toString(), /WS_ERR_HANDSHAKE_PROTOCOL/)
  await spaced.client.waitClosed()
  // the same padding around a comma is a valid list
  const listed = await answer(port, upgradeRequest('/chat', { 'Sec-WebSocket-Protocol': 'nope' + ' '.repeat(30_000) + ',' + ' '.repeat(30_000) + 'superchat' }))
  t.equal(listed.status, 101)
  t.match(listed.head, /\r\nSec-WebSocket-Protocol: superchat/i)
  listed.client.socket.destroy()
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('Sec-WebSocket-Extensions with prototype keys and unclosed quotes', async (t) => {
  const { app, port, log } = await server({}, echo)
  t.teardown(() => app.close())
  const values = [
    'constructor',
    '__proto__',
    'hasOwnProperty; toString',
    'permessage-deflate; __proto__=1; constructor; hasOwnProperty="x"',
    'permessage-deflate; client_max_window_bits="15',
    'permessage-deflate; x="\\',
    '"',
    ';;;,,,'
  ]
  for (const value of values) {
    const { status, head, client } = await answer(port, upgradeRequest('/echo', { 'Sec-WebSocket-Extensions': value }))
    // an offer we cannot or will not accept is ignored (RFC 6455 §9.1): the 101 names no extension
    t.equal(status, 101, `upgraded despite ${JSON.stringify(value)}`)
    t.notMatch(head, /sec-websocket-extensions: (constructor|__proto__|hasOwnProperty)/i)
    client.socket.destroy()
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('bad Sec-WebSocket-Key values: 400', async (t) => {
  const { app, port, log } = await server({}, echo)
  t.teardown(() => app.close())
  const keys = [
    'not base64 at all!!!!!==', // 24 characters, not base64
    'AAAAAAAAAAAAAAAAAAAAAA=', // 15 bytes
    'AAAAAAAAAAAAAAAAAAAAAAAAAAA=', // 20 bytes
    'AAAAAAAAAAAAAAAAAAAAAB==', // 16 bytes but non-zero padding bits
    'dGhlIHNhbXBsZSBub25jZQ', // unpadded
    ''
  ]
  for (const key of keys) {
    const request = key === ''
      ? upgradeRequest('/echo', { 'Sec-WebSocket-Key': '' })
      : upgradeRequest('/echo', { 'Sec-WebSocket-Key': key })
    const { status, client } = await answer(port, request)
    t.equal(status, 400, `key ${JSON.stringify(key)}: 400`)
    t.match(client.body().toString(), /WS_ERR_HANDSHAKE_KEY/)
    await client.waitClosed()
  }
  // two keys: Node joins duplicates of unknown headers with ", "
  const twice = await answer(port, upgradeRequest('/echo', {}, ['Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']))
  t.equal(twice.status, 400, 'a repeated key is refused')
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('Node bounds the time to complete the head: headersTimeout answers 408', async (t) => {
  const { app, port } = await server({}, echo, { http: { headersTimeout: 200, connectionsCheckingInterval: 20 } })
  t.teardown(() => app.close())
  const client = await RawClient.connect(port)
  client.write('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n') // never finished
  const { status } = await client.response(5000)
  t.equal(status, 408)
  await client.waitClosed()
  t.equal(await assertServes(port), 'still alive')
})
