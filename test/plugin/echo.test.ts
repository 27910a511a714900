import t from 'tap'
import Fastify from 'fastify'
import { WebSocket as WsClient } from 'ws'
import { WebSocket as UndiciWebSocket } from 'undici'
import websocket from '../../lib/index.js'

async function echoServer () {
  const app = Fastify()
  await app.register(websocket)
  app.ws('/echo', (socket) => {
    socket.on('message', (data: Buffer, isBinary: boolean) => socket.send(isBinary ? data : data.toString()))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/echo` }
}

t.test('ws client: text and binary echo through the router', async (t) => {
  const { app, url } = await echoServer()
  t.teardown(() => app.close())
  const client = new WsClient(url)
  await new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) })
  const got: Array<[string, boolean]> = []
  const done = new Promise<void>((resolve) => {
    client.on('message', (data: Buffer, isBinary: boolean) => {
      got.push([data.toString(), isBinary])
      if (got.length === 2) resolve()
    })
  })
  client.send('hello')
  client.send(Buffer.from('bytes'))
  await done
  t.same(got, [['hello', false], ['bytes', true]])
  const closed = new Promise<[number, string]>((resolve) => client.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()])))
  client.close(1000, 'bye')
  t.same(await closed, [1000, ''])
})

t.test('undici WebSocket: echo and clean close', async (t) => {
  const { app, url } = await echoServer()
  t.teardown(() => app.close())
  const client = new UndiciWebSocket(url)
  client.binaryType = 'arraybuffer'
  await new Promise((resolve, reject) => { client.onopen = resolve; client.onerror = reject })
  const message = new Promise<unknown>((resolve) => { client.onmessage = (e) => resolve(e.data) })
  client.send('héllo wörld')
  t.equal(await message, 'héllo wörld')
  const closed = new Promise<{ code: number, wasClean: boolean }>((resolve) => { client.onclose = (e) => resolve({ code: e.code, wasClean: e.wasClean }) })
  client.close(4000)
  t.same(await closed, { code: 4000, wasClean: true })
})

t.test('frames sent with the upgrade request, and while an async hook runs, are not lost', async (t) => {
  const net = await import('node:net')
  const app = Fastify()
  await app.register(websocket)
  let releaseHook: () => void = () => {}
  const hookEntered = new Promise<void>((resolve) => {
    app.addHook('onRequest', async () => {
      resolve()
      await new Promise<void>((resolve) => { releaseHook = resolve })
    })
  })
  app.ws('/echo', (socket) => {
    socket.on('message', (data: Buffer, isBinary: boolean) => socket.send(isBinary ? data : data.toString()))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const masked = (text: string): Buffer => {
    const payload = Buffer.from(text)
    const mask = Buffer.from([1, 2, 3, 4])
    const out = Buffer.alloc(6 + payload.length)
    out[0] = 0x81; out[1] = 0x80 | payload.length
    mask.copy(out, 2)
    for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i] ^ mask[i & 3]
    return out
  }
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = Buffer.alloc(0)
  const gotAll = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      const text = received.toString('latin1')
      if (text.includes('first') && text.includes('second')) resolve()
    })
  })
  // the upgrade request and a first frame in one write (Node hands it over as `head`)
  socket.write(Buffer.concat([
    Buffer.from('GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'),
    masked('first')
  ]))
  await hookEntered
  socket.write(masked('second')) // while the hook still holds the request
  releaseHook()
  await gotAll
  const text = received.toString('latin1')
  t.match(text, /^HTTP\/1\.1 101 Switching Protocols\r\n/)
  t.ok(text.indexOf('first') < text.indexOf('second'), 'both echoed, in order')
})
