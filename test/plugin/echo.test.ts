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
