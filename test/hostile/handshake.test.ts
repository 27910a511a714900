// Hostile opening handshakes (issue 5). Each case asserts the exact answer and then proves the
// server still serves another client. What Node's HTTP server bounds before our code runs is
// asserted too (431 for oversized heads, 408 for a head that never completes).
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

t.test('thousands of headers', async (t) => {
  const { app, port, log } = await server({}, echo, { http: { maxHeaderSize: 64 * 1024 } })
  t.teardown(() => app.close())
  const junk = Array.from({ length: 3000 }, (_, i) => `x-junk-${i}: 1`)

  // the handshake headers first: Node keeps the first 2000 (server.maxHeadersCount) and drops the rest
  const first = await answer(port, upgradeRequest('/echo', {}).replace(/\r\n\r\n$/, '\r\n' + junk.join('\r\n') + '\r\n\r\n'))
  t.equal(first.status, 101, 'handshake headers before the junk: upgraded')
  first.client.socket.destroy()

  // the junk first: the handshake headers are among those Node dropped
  const dropped = await answer(port, upgradeRequest('/echo', {}, junk))
  t.equal(dropped.status, 426, 'Upgrade was dropped by Node: 426 Upgrade Required, never a 101')
  await dropped.client.waitClosed()

  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [], 'no error-level log')
})

t.test('a request head over maxHeaderSize is refused by Node with 431', async (t) => {
  const { app, port } = await server({}, echo)
  t.teardown(() => app.close())
  const junk = Array.from({ length: 5000 }, (_, i) => `x-junk-${i}: 1`)
  const { status, client } = await answer(port, upgradeRequest('/echo', {}, junk))
  t.equal(status, 431)
  await client.waitClosed()
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
