// injectWS() offering permessage-deflate: a test of a compressed route through the real
// handshake, negotiation and codec, with no network; and the client's checks of the response.
import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { ProtocolError, type WebSocket } from '../../lib/index.js'
import { acceptKey } from '../../lib/protocol/handshake.js'
import { deadline } from './helpers.js'

async function echoApp (t: Test, perMessageDeflate: boolean | object = true): Promise<{ app: FastifyInstance, server: WebSocket[] }> {
  const app = Fastify()
  t.teardown(() => app.close())
  const server: WebSocket[] = []
  await app.register(websocket, { perMessageDeflate })
  app.ws('/echo', (socket) => {
    server.push(socket)
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString('utf8')))
  })
  return { app, server }
}

/** bytes the client end writes to and reads from its transport */
function countBytes (ws: WebSocket): { written: () => number, read: () => number } {
  const socket = (ws as unknown as { socket: Duplex }).socket
  let written = 0
  let read = 0
  const write = socket.write.bind(socket) as (chunk: Buffer, ...rest: unknown[]) => boolean
  socket.write = ((chunk: Buffer, ...rest: unknown[]) => { written += chunk.length; return write(chunk, ...rest) }) as typeof socket.write
  socket.on('data', (chunk: Buffer) => { read += chunk.length })
  return { written: () => written, read: () => read }
}

t.test('perMessageDeflate: true negotiates the extension and both directions compress', async (t) => {
  const { app, server } = await echoApp(t)
  const ws = await app.injectWS('/echo', { perMessageDeflate: true })
  t.equal(ws.extensions, 'permessage-deflate', 'the 101 answered the offer')
  t.equal(server[0].extensions, 'permessage-deflate', 'the server side agrees')
  const bytes = countBytes(ws)
  const text = 'compress me, '.repeat(20_000) // 260,000 bytes
  ws.send(text)
  const [echo, isBinary] = await deadline(once(ws, 'message'), 'the echo') as [Buffer, boolean]
  t.equal(isBinary, false)
  t.equal(echo.toString('utf8'), text, 'inflated back to the same text')
  t.ok(bytes.written() < text.length / 20, `the client sent ${bytes.written()} bytes for ${text.length}`)
  t.ok(bytes.read() < text.length / 20, `the server answered with ${bytes.read()} bytes for ${text.length}`)
  // a second message reuses both contexts (context takeover): still round trips
  const binary = Buffer.alloc(100_000, 7)
  ws.send(binary)
  const [echo2, isBinary2] = await deadline(once(ws, 'message'), 'the second echo') as [Buffer, boolean]
  t.equal(isBinary2, true)
  t.same(echo2, binary)
  ws.close(1000)
  const [code] = await deadline(once(ws, 'close'), 'close') as [number]
  t.equal(code, 1000)
})

t.test('offer parameters reach the server and its answer is honoured', async (t) => {
  const { app, server } = await echoApp(t, { serverMaxWindowBits: 11 })
  const ws = await app.injectWS('/echo', { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 12 } })
  t.equal(ws.extensions, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11')
  t.equal(server[0].extensions, ws.extensions)
  for (let i = 0; i < 3; i++) {
    const text = `message ${i} `.repeat(5000)
    ws.send(text)
    const [echo] = await deadline(once(ws, 'message'), 'echo') as [Buffer]
    t.equal(echo.toString(), text, `message ${i} without context takeover`)
  }
  ws.close()
})

t.test('a bad offer parameter rejects before any connection is made', async (t) => {
  const { app } = await echoApp(t)
  await app.ready()
  let connections = 0
  app.server.on('connection', () => { connections++ })
  await t.rejects(app.injectWS('/echo', { perMessageDeflate: { serverMaxWindowBits: 20 } }), RangeError)
  t.equal(connections, 0, 'no in-memory connection handed to the server')
})

t.test('no offer (the default), or a route without the extension: nothing compressed', async (t) => {
  const { app } = await echoApp(t)
  const plain = await app.injectWS('/echo')
  t.equal(plain.extensions, '', 'no offer, no extension')
  const bytes = countBytes(plain)
  plain.send('x'.repeat(10_000))
  await deadline(once(plain, 'message'), 'echo')
  t.ok(bytes.written() > 10_000, 'sent as is')
  plain.close()

  const off = await echoApp(t, false)
  const ws = await off.app.injectWS('/echo', { perMessageDeflate: true })
  t.equal(ws.extensions, '', 'the server declined: §5 "both endpoints proceed without per-message compression"')
  ws.send('still works')
  const [echo] = await deadline(once(ws, 'message'), 'echo') as [Buffer]
  t.equal(echo.toString(), 'still works')
  ws.close()
})

/** An app whose onRequest hook answers the upgrade itself with the given extensions header. */
async function forgedApp (t: Test, extensions: string): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.addHook('onRequest', async (request, reply) => {
    reply.hijack()
    const key = String(request.headers['sec-websocket-key'])
    request.raw.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${acceptKey(key)}\r\nSec-WebSocket-Extensions: ${extensions}\r\n\r\n`)
  })
  app.ws('/echo', () => {})
  return app
}

t.test('a response the client must refuse fails the connection (RFC 7692 §7, RFC 6455 §4.1)', async (t) => {
  const cases: Array<{ extensions: string, offer: boolean, why: string }> = [
    { extensions: 'permessage-deflate; client_max_window_bits=10', offer: true, why: 'client_max_window_bits not offered' },
    { extensions: 'permessage-deflate; fast', offer: true, why: 'an unknown parameter' },
    { extensions: 'permessage-deflate', offer: false, why: 'an extension the client did not offer' }
  ]
  for (const c of cases) {
    const app = await forgedApp(t, c.extensions)
    const error = await app.injectWS('/echo', { perMessageDeflate: c.offer }).then(() => null, (err: unknown) => err)
    t.ok(error instanceof ProtocolError, `${c.why}: rejected with a ProtocolError`)
    t.equal((error as ProtocolError).code, 'WS_ERR_EXTENSION_RESPONSE', c.why)
  }
})
