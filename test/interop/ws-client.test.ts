/**
 * Interop with the `ws` client (a devDependency; never a runtime one): our server against a
 * WebSocket implementation written by others.
 *
 * Covered: text and binary echo at 0, 1, 125, 126, 127, 65535, 65536 bytes and 1 MiB (text with
 * 2-, 3- and 4-byte UTF-8 characters), a message sent by ws in fragments, messages + ping + close
 * sent back to back (with and without permessage-deflate: echoes and pong before the close echo), ping from ws answered
 * with the same payload, ping from the server answered by ws, subprotocol negotiation against a
 * route with `protocols: ['a', 'b']` (the first client-offered one the route speaks; none -> no
 * Sec-WebSocket-Protocol in the 101, checked with the raw client, and ws refuses the connection
 * since it asked for one), close codes and reasons both directions,
 * a server close without a code (1005 at ws), and app.close() giving ws a 1001.
 * Autobahn groups exercised here through a real client: 1.*, 2.*, 5.*, 7.*, 9.* (1 MiB).
 */
import { once } from 'node:events'
import t from 'tap'
import { WebSocket as WsClient } from 'ws'
import { RawWebSocket } from '../helpers/raw-client.js'
import { deadline, interopServer, pattern, sizes, textOf } from './helpers.js'

async function open (url: string, protocols?: string[]): Promise<WsClient> {
  const client = new WsClient(url, protocols)
  await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'ws open')
  return client
}

function closed (client: WsClient): Promise<{ code: number, reason: string }> {
  return deadline(new Promise((resolve) => client.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))), 'ws close')
}

function nextMessage (client: WsClient): Promise<{ data: Buffer, isBinary: boolean }> {
  return deadline(new Promise((resolve) => client.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }))), 'a message')
}

t.test('text and binary echo across the length encodings', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  const client = await open(`${server.url}/echo`)
  for (const n of sizes) {
    const s = textOf(n)
    let reply = nextMessage(client)
    client.send(s)
    let got = await reply
    t.equal(got.isBinary, false, `text of ${n} characters comes back as text`)
    t.ok(got.data.toString('utf8') === s, `text of ${n} characters (${Buffer.byteLength(s)} bytes) intact`)
    const b = pattern(n)
    reply = nextMessage(client)
    client.send(b)
    got = await reply
    t.equal(got.isBinary, true, `binary of ${n} bytes comes back as binary`)
    t.ok(got.data.equals(b), `binary of ${n} bytes intact`)
  }
  const c = closed(client)
  client.close(1000)
  t.same(await c, { code: 1000, reason: '' })
})

t.test('a message ws sends in fragments arrives as one message', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  const client = await open(`${server.url}/echo`)
  const reply = nextMessage(client)
  client.send('frag', { fin: false })
  client.send('ment', { fin: false })
  client.send('ed', { fin: true })
  const got = await reply
  t.same([got.data.toString(), got.isBinary], ['fragmented', false])
  client.close()
})

t.test('messages, a ping and a close sent back to back: echoes and pong first, then the close (with and without permessage-deflate)', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  for (const path of ['/echo', '/echo-deflate']) {
    const client = new WsClient(`${server.url}${path}`, { perMessageDeflate: path === '/echo-deflate' ? { threshold: 0 } : false })
    await deadline(once(client, 'open'), 'open')
    t.equal(client.extensions, path === '/echo-deflate' ? 'permessage-deflate' : '', `${path}: extensions`)
    const got: string[] = []
    client.on('message', (data: Buffer) => got.push(`message ${data.length}`))
    client.on('pong', (data: Buffer) => got.push(`pong ${data.toString()}`))
    const c = closed(client)
    client.send('x'.repeat(2000))
    client.send(pattern(10))
    client.ping('p')
    client.close(1000)
    t.same(await c, { code: 1000, reason: '' })
    t.same(got, ['message 2000', 'message 10', 'pong p'], `${path}: nothing lost to the close that followed in the same read`)
  }
})

t.test('ping from ws gets a pong with the same payload; ping from the server gets ws\'s pong', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  const client = await open(`${server.url}/echo`)
  const side = await server.nextSocket()
  for (const payload of [Buffer.alloc(0), Buffer.from('hello'), pattern(125)]) {
    const pong = deadline(once(client, 'pong'), 'pong')
    client.ping(payload)
    const [data] = await pong as [Buffer]
    t.ok(data.equals(payload), `pong carries the ${payload.length}-byte ping payload`)
  }
  const serverPong = deadline(once(side.ws, 'pong'), 'server pong')
  side.ws.ping('from server')
  const [data] = await serverPong as [Buffer]
  t.equal(data.toString(), 'from server')
  client.close()
})

t.test('subprotocols: the first client-offered one that the route speaks', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  for (const [offer, expected] of [[['b', 'a'], 'b'], [['x', 'a'], 'a'], [['a'], 'a']] as const) {
    const client = new WsClient(`${server.url}/proto`, [...offer])
    const first = nextMessage(client)
    await deadline(once(client, 'open'), 'open')
    t.equal(client.protocol, expected, `offer ${offer.join(',')}: ws sees ${expected}`)
    t.equal((await first).data.toString(), `protocol:${expected}`, 'and so does the server-side socket')
    client.close()
  }
  // no protocol in common: the 101 carries none (RFC 6455 §4.2.2: the server may select none) ...
  const raw = await RawWebSocket.connect(Number(new URL(server.url).port), '/proto', { headers: { 'Sec-WebSocket-Protocol': 'c, d' } })
  t.equal(raw.headers['sec-websocket-protocol'], undefined, 'no Sec-WebSocket-Protocol in the 101')
  raw.destroy()
  // ... and ws, having asked for one, refuses the connection
  const client = new WsClient(`${server.url}/proto`, ['c'])
  const [err] = await deadline(once(client, 'error'), 'ws error') as [Error]
  t.match(err.message, /subprotocol/i)
  // no offer at all: the connection opens without a protocol
  const plain = await open(`${server.url}/proto`)
  t.equal(plain.protocol, '')
  plain.close()
})

t.test('close from ws: the code and reason reach the server, the code is echoed', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  for (const [code, reason] of [[1000, ''], [1001, 'going'], [3000, 'app'], [4999, 'é'.repeat(61) + 'x']] as const) {
    const client = await open(`${server.url}/echo`)
    const side = await server.nextSocket()
    const c = closed(client)
    client.close(code, reason)
    t.same(await c, { code, reason: '' }, `ws sees ${code} echoed`)
    t.same(await side.closed, { code, reason, wasClean: true }, `the server sees ${code} "${reason.slice(0, 10)}"`)
  }
})

t.test('close from the server: ws sees the code and reason', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  for (const [code, reason] of [[1000, 'done'], [1008, 'policy'], [1011, ''], [4000, 'custom reason']] as const) {
    const client = await open(`${server.url}/echo`)
    const side = await server.nextSocket()
    const c = closed(client)
    side.ws.close(code, reason)
    t.same(await c, { code, reason }, `ws sees ${code} "${reason}"`)
    t.same(await side.closed, { code, reason, wasClean: true }, 'ws echoed the code (and the reason)')
  }
  const client = await open(`${server.url}/echo`)
  const side = await server.nextSocket()
  const c = closed(client)
  side.ws.close()
  t.same(await c, { code: 1005, reason: '' }, 'a close without a code reads as 1005 at ws')
})

t.test('app.close() closes every WebSocket with 1001', async (t) => {
  const server = await interopServer()
  const clients = await Promise.all([open(`${server.url}/echo`), open(`${server.url}/echo`), open(`${server.url}/proto`, ['a'])])
  const codes = Promise.all(clients.map(closed))
  await deadline(server.app.close(), 'app.close()')
  t.same((await codes).map((c) => c.code), [1001, 1001, 1001])
  t.same((await Promise.all(server.sockets.map((s) => s.closed))).map((c) => [c.code, c.wasClean]), [[1001, true], [1001, true], [1001, true]])
})
