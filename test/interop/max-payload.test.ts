/**
 * `maxPayload: 0` and `maxPayload: Infinity` mean no limit (as `ws` reads 0): messages over the
 * default 1 MiB limit arrive whole, in one frame, in many fragments and compressed, with the `ws`
 * client; the limits derived from maxPayload keep their floors; a frame announcing more than a
 * Buffer can hold still closes with 1009 (and does not crash the process).
 */
import { constants as bufferConstants } from 'node:buffer'
import { createHash } from 'node:crypto'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { type WebSocketPluginOptions } from '../../lib/index.js'
import { resolveSettings } from '../../lib/connection/settings.js'
import { Op, RawWebSocket, encodeFrame } from '../helpers/raw-client.js'
import { deadline } from './helpers.js'

const MiB = 1024 * 1024
/** over the default limit (1 MiB) */
const SIZE = 3 * MiB

function sha1 (data: Buffer): string {
  return createHash('sha1').update(data).digest('hex')
}

function pattern (n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 12)) & 0xff
  return b
}

/** /digest answers each message with its length and SHA-1 (the reply stays small). */
async function startServer (options: WebSocketPluginOptions, route: { maxPayload?: number } = {}): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  await app.register(websocket, { heartbeatInterval: 0, ...options })
  app.ws('/digest', route, (socket) => {
    socket.on('message', (data: Buffer, binary: boolean) => socket.send(`${binary ? 'binary' : 'text'} ${data.length} ${sha1(data)}`))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, port: (app.server.address() as { port: number }).port }
}

async function open (url: string, perMessageDeflate: boolean): Promise<WsClient> {
  const client = new WsClient(url, { perMessageDeflate: perMessageDeflate ? { threshold: 0 } : false, maxPayload: 0 })
  await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'ws open')
  return client
}

/** The next text message, or a rejection with the close code if the connection ends first. */
function reply (client: WsClient): Promise<string> {
  return deadline(new Promise((resolve, reject) => {
    const onMessage = (data: Buffer): void => { client.off('close', onClose); resolve(data.toString()) }
    const onClose = (code: number): void => { client.off('message', onMessage); reject(new Error(`closed with ${code}`)) }
    client.once('message', onMessage)
    client.once('close', onClose)
  }), 'the reply', 20_000)
}

const CASES: Array<{ name: string, plugin: WebSocketPluginOptions, route?: { maxPayload?: number } }> = [
  { name: 'plugin maxPayload: 0', plugin: { maxPayload: 0 } },
  { name: 'plugin maxPayload: Infinity', plugin: { maxPayload: Infinity } },
  { name: 'route maxPayload: 0 under a plugin limit of 1 KiB', plugin: { maxPayload: 1024 }, route: { maxPayload: 0 } },
  { name: 'maxPayload: 0 with permessage-deflate', plugin: { maxPayload: 0, perMessageDeflate: true } }
]

for (const c of CASES) {
  t.test(`${c.name}: a ${SIZE / MiB} MiB message arrives whole, in one frame and in fragments`, async (t) => {
    const srv = await startServer(c.plugin, c.route)
    t.teardown(() => srv.app.close())
    const deflate = c.plugin.perMessageDeflate === true
    const client = await open(`ws://127.0.0.1:${srv.port}/digest`, deflate)
    t.teardown(() => client.terminate())
    if (deflate) t.equal(client.extensions, 'permessage-deflate', 'compressed')
    const data = pattern(SIZE)
    client.send(data, { binary: true })
    t.equal(await reply(client), `binary ${SIZE} ${sha1(data)}`, 'one frame')
    // 48 fragments of 64 KiB (compressed: the fragments of one compressed message)
    const piece = 64 * 1024
    const done = reply(client)
    for (let o = 0; o < SIZE; o += piece) client.send(data.subarray(o, o + piece), { binary: true, fin: o + piece >= SIZE })
    t.equal(await done, `binary ${SIZE} ${sha1(data)}`, 'fragmented')
    const text = 'é'.repeat(SIZE / 2)
    client.send(text)
    t.equal(await reply(client), `text ${SIZE} ${sha1(Buffer.from(text))}`, 'text')
  })
}

t.test('with a limit, the same message is refused with 1009 (the limit still works)', async (t) => {
  const srv = await startServer({ maxPayload: MiB })
  t.teardown(() => srv.app.close())
  const client = await open(`ws://127.0.0.1:${srv.port}/digest`, false)
  client.send(pattern(SIZE), { binary: true })
  await t.rejects(reply(client), { message: 'closed with 1009' })
})

t.test('no limit: a frame announcing more than a Buffer can hold closes with 1009', async (t) => {
  const srv = await startServer({ maxPayload: 0 })
  t.teardown(() => srv.app.close())
  const raw = await RawWebSocket.connect(srv.port, '/digest')
  t.teardown(() => raw.destroy())
  // 2^62 bytes: the most significant bit clear (§5.2), past any Buffer.constants.MAX_LENGTH
  await raw.send(encodeFrame({ opcode: Op.Binary, payload: Buffer.alloc(0), length: 2 ** 62 }))
  const frame = await raw.nextFrame()
  t.equal(frame.opcode, Op.Close)
  t.equal(frame.payload.readUInt16BE(0), 1009)
})

t.test('no limit: the connection limits derived from maxPayload keep their floors', async (t) => {
  for (const maxPayload of [0, Infinity]) {
    const settings = resolveSettings({ maxPayload })
    t.equal(settings.maxPayload, bufferConstants.MAX_LENGTH, `${maxPayload}: the largest Buffer is the only bound`)
    t.equal(settings.maxBufferedAmount, 4 * MiB, `${maxPayload}: maxBufferedAmount as with the default maxPayload`)
    t.equal(settings.maxQueuedBytes, MiB, `${maxPayload}: maxQueuedBytes as with the default maxPayload`)
    t.equal(settings.maxFragments, 16 * 1024, `${maxPayload}: maxFragments unchanged`)
  }
  const limited = resolveSettings({ maxPayload: 8 * MiB })
  t.equal(limited.maxBufferedAmount, 32 * MiB, 'a limit still scales maxBufferedAmount')
  t.equal(limited.maxQueuedBytes, 8 * MiB, 'and maxQueuedBytes')
})

t.test('maxPayload still refuses what is not a non-negative integer or Infinity', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  for (const bad of [-1, 1.5, NaN, -Infinity, '0']) {
    t.throws(() => app.ws('/bad', { maxPayload: bad as number }, () => {}), `maxPayload: ${String(bad)}`)
  }
  t.doesNotThrow(() => app.ws('/zero', { maxPayload: 0 }, () => {}))
  t.doesNotThrow(() => app.ws('/infinity', { maxPayload: Infinity }, () => {}))
})

t.test('injectWS client with maxPayload: 0 receives a message over the default limit', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { heartbeatInterval: 0, maxPayload: 0 })
  const data = pattern(SIZE)
  app.ws('/big', (socket) => { socket.send(data) })
  const client = await app.injectWS('/big', { maxPayload: 0 })
  const received = await deadline(new Promise<Buffer>((resolve, reject) => {
    client.once('message', (m: Buffer) => resolve(m))
    client.once('close', (code: number) => reject(new Error(`closed with ${code}`)))
  }), 'the message', 20_000)
  t.equal(sha1(received), sha1(data))
  client.terminate()
})
