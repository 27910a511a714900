/**
 * Interop with undici's WebSocket (the WHATWG WebSocket of Node's fetch stack; a devDependency,
 * never a runtime one): our server against a client written by others, with browser semantics.
 *
 * Covered: text and binary echo at 0, 1, 125, 126, 127, 65535, 65536 bytes and 1 MiB (text with
 * 2-, 3- and 4-byte UTF-8 characters; binary as ArrayBuffer and as Blob), a ping from the server
 * answered by undici, subprotocol negotiation against a route with `protocols: ['a', 'b']`
 * (no common protocol: undici fails the connection as the WHATWG spec requires), close codes and
 * reasons both directions (wasClean true), and app.close() giving undici a 1001.
 * Autobahn groups exercised here through a real client: 1.*, 2.* (server ping), 7.*, 9.* (1 MiB).
 */
import { once } from 'node:events'
import t from 'tap'
import { WebSocket } from 'undici'
import { deadline, interopServer, pattern, sizes, textOf } from './helpers.js'

async function open (url: string, protocols?: string[]): Promise<WebSocket> {
  const client = new WebSocket(url, protocols)
  client.binaryType = 'arraybuffer'
  await deadline(new Promise((resolve, reject) => {
    client.addEventListener('open', resolve, { once: true })
    client.addEventListener('error', reject, { once: true })
  }), 'undici open')
  return client
}

function closed (client: WebSocket): Promise<{ code: number, reason: string, wasClean: boolean }> {
  return deadline(new Promise((resolve) => {
    client.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean }), { once: true })
  }), 'undici close')
}

function nextMessage (client: WebSocket): Promise<unknown> {
  return deadline(new Promise((resolve) => {
    client.addEventListener('message', (e) => resolve(e.data), { once: true })
  }), 'a message')
}

t.test('text and binary echo across the length encodings', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  const client = await open(`${server.url}/echo`)
  for (const n of sizes) {
    const s = textOf(n)
    let reply = nextMessage(client)
    client.send(s)
    const text = await reply
    t.ok(typeof text === 'string' && text === s, `text of ${n} characters (${Buffer.byteLength(s)} bytes) intact`)
    const b = pattern(n)
    reply = nextMessage(client)
    client.send(b)
    const data = await reply
    t.ok(data instanceof ArrayBuffer && Buffer.from(data).equals(b), `binary of ${n} bytes intact`)
  }
  const c = closed(client)
  client.close(1000)
  t.same(await c, { code: 1000, reason: '', wasClean: true })
})

t.test('binary as Blob both ways', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  const client = await open(`${server.url}/echo`)
  client.binaryType = 'blob'
  const b = pattern(70000)
  const reply = nextMessage(client)
  client.send(new Blob([b]))
  const data = await reply
  t.ok(data instanceof Blob)
  t.ok(Buffer.from(await (data as Blob).arrayBuffer()).equals(b), 'intact')
  client.close()
})

t.test('a ping from the server is answered by undici with the same payload', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  const client = await open(`${server.url}/echo`)
  const side = await server.nextSocket()
  const pong = deadline(once(side.ws, 'pong'), 'pong')
  side.ws.ping(pattern(125))
  const [data] = await pong as [Buffer]
  t.ok(data.equals(pattern(125)))
  // and the connection still works
  const reply = nextMessage(client)
  client.send('after ping')
  t.equal(await reply, 'after ping')
  client.close()
})

t.test('subprotocols: the first client-offered one that the route speaks', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  for (const [offer, expected] of [[['b', 'a'], 'b'], [['x', 'a'], 'a']] as const) {
    const client = new WebSocket(`${server.url}/proto`, [...offer])
    const first = nextMessage(client)
    await deadline(new Promise((resolve) => client.addEventListener('open', resolve, { once: true })), 'open')
    t.equal(client.protocol, expected, `offer ${offer.join(',')}: undici sees ${expected}`)
    t.equal(await first, `protocol:${expected}`, 'and so does the server-side socket')
    client.close()
  }
  // no protocol in common: the 101 carries none and undici fails the connection
  const client = new WebSocket(`${server.url}/proto`, ['c'])
  const c = closed(client)
  await deadline(new Promise((resolve) => client.addEventListener('error', resolve, { once: true })), 'undici error')
  t.equal((await c).wasClean, false)
  // undici 7 reports the failure (1006) but leaves its TCP connection open, so the server-side
  // socket would only go at app.close() after the close timeout: end it here
  const side = server.sockets[server.sockets.length - 1]
  t.equal(side.ws.protocol, '', 'the server selected no protocol')
  side.ws.terminate()
  t.equal((await side.closed).code, 1006)
})

t.test('close from undici: the code and reason reach the server', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  for (const [code, reason] of [[1000, ''], [3000, 'app'], [4000, 'bye'], [4999, 'é'.repeat(61) + 'x']] as const) {
    const client = await open(`${server.url}/echo`)
    const side = await server.nextSocket()
    const c = closed(client)
    client.close(code, reason)
    t.same(await c, { code, reason: '', wasClean: true }, `undici sees ${code} echoed, clean`)
    t.same(await side.closed, { code, reason, wasClean: true }, `the server sees ${code}`)
  }
  // no code: undici sends an empty close, read as 1005 on both sides
  const client = await open(`${server.url}/echo`)
  const side = await server.nextSocket()
  const c = closed(client)
  client.close()
  t.same(await c, { code: 1005, reason: '', wasClean: true })
  t.same(await side.closed, { code: 1005, reason: '', wasClean: true })
})

t.test('close from the server: undici sees the code and reason, clean', async (t) => {
  const server = await interopServer()
  t.teardown(() => server.app.close())
  for (const [code, reason] of [[1000, 'done'], [1008, 'policy'], [1011, ''], [4000, 'custom reason']] as const) {
    const client = await open(`${server.url}/echo`)
    const side = await server.nextSocket()
    const c = closed(client)
    side.ws.close(code, reason)
    t.same(await c, { code, reason, wasClean: true }, `undici sees ${code} "${reason}"`)
    t.equal((await side.closed).code, code, 'undici echoed the code')
  }
})

t.test('app.close() closes every WebSocket with 1001', async (t) => {
  const server = await interopServer()
  const clients = await Promise.all([open(`${server.url}/echo`), open(`${server.url}/proto`, ['b'])])
  const codes = Promise.all(clients.map(closed))
  await deadline(server.app.close(), 'app.close()')
  t.same((await codes).map((c) => [c.code, c.wasClean]), [[1001, true], [1001, true]])
})
