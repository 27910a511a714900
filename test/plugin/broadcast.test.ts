// broadcast(): one frame encoded once, written to every open socket (issue 6).
import t from 'tap'
import Fastify from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { broadcast, PreparedMessage, type WebSocket } from '../../lib/index.js'
import { decodeHeader } from '../../lib/protocol/frame.js'

async function server (t: { teardown: (fn: () => unknown) => void }) {
  const app = Fastify()
  await app.register(websocket)
  app.ws('/plain', () => {})
  app.ws('/deflate', { perMessageDeflate: { threshold: 16 } }, () => {})
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, base: `ws://127.0.0.1:${port}` }
}

function connect (url: string, options: { perMessageDeflate?: boolean } = {}) {
  const ws = new WsClient(url, { perMessageDeflate: options.perMessageDeflate ?? false })
  const messages: Array<[string, boolean]> = []
  const waiters: Array<() => void> = []
  ws.on('message', (data: Buffer, isBinary: boolean) => { messages.push([data.toString(), isBinary]); waiters.shift()?.() })
  return {
    ws,
    messages,
    opened: new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) }),
    next: () => new Promise<void>((resolve) => waiters.push(resolve))
  }
}

/** wait until the server registered `n` sockets */
async function serverSockets (app: { websocketConnections: ReadonlySet<WebSocket> }, n: number): Promise<WebSocket[]> {
  const deadline = Date.now() + 5000
  while (app.websocketConnections.size < n) {
    if (Date.now() > deadline) throw new Error('sockets did not register')
    await new Promise((resolve) => setImmediate(resolve))
  }
  return [...app.websocketConnections]
}

t.test('a prepared message is one valid unmasked frame', async (t) => {
  for (const [data, opcode] of [['héllo', 1], [Buffer.alloc(300, 1), 2], [new Uint16Array([1, 2, 3]), 2]] as const) {
    const m = new PreparedMessage(data)
    const h = decodeHeader(m.frame, 0, m.frame.length)
    t.ok(h !== null && h.fin && !h.masked && h.rsv === 0 && h.opcode === opcode, `header of ${opcode === 1 ? 'text' : 'binary'}`)
    t.equal(h!.headerLength + h!.payloadLength, m.frame.length, 'header + payload fill the frame')
  }
  t.throws(() => broadcast([], 42 as never), TypeError)
})

t.test('every open socket receives the message; except and closed sockets are skipped', async (t) => {
  const { app, base } = await server(t)
  const clients = [connect(`${base}/plain`), connect(`${base}/plain`), connect(`${base}/plain`)]
  await Promise.all(clients.map((c) => c.opened))
  const sockets = await serverSockets(app, 3)
  const [first, second] = sockets
  const got = clients.map((c) => c.next())
  t.equal(broadcast(sockets, 'to all'), 3)
  await Promise.all(got)
  for (const c of clients) t.same(c.messages.at(-1), ['to all', false])

  t.equal(broadcast(sockets, { n: 1 }, { except: first }), 2, 'the excepted socket is not counted')
  const deadline = Date.now() + 5000
  while (clients.reduce((n, c) => n + c.messages.length, 0) < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  t.same(clients.map((c) => c.messages.length).sort(), [1, 2, 2], 'one client (the excepted one) got only the first message')
  t.same(clients.flatMap((c) => c.messages.slice(1)), [['{"n":1}', false], ['{"n":1}', false]], 'objects go as JSON text')

  const closed = new Promise((resolve) => second.once('close', resolve))
  second.close(1000)
  await closed
  t.equal(broadcast(sockets, Buffer.from([1, 2, 3])), 2, 'a closed socket is skipped')
})

t.test('a socket that negotiated permessage-deflate gets its own compressed copy', async (t) => {
  const { app, base } = await server(t)
  const plain = connect(`${base}/deflate`)
  const compressed = connect(`${base}/deflate`, { perMessageDeflate: true })
  await Promise.all([plain.opened, compressed.opened])
  t.match(compressed.ws.extensions, /permessage-deflate/)
  const sockets = await serverSockets(app, 2)
  const text = 'compress me '.repeat(20)
  const waits = [plain.next(), compressed.next()]
  t.equal(broadcast(sockets, text), 2)
  await Promise.all(waits)
  t.same(plain.messages, [[text, false]])
  t.same(compressed.messages, [[text, false]])
})
