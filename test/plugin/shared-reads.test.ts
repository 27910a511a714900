// Reads into the shared buffer (lib/connection/shared-reads.ts, issue 6): every socket's reads land
// in one buffer that the next read overwrites, so the core must copy out everything it hands
// over. These tests keep every message and ping payload the server received, from two clients
// writing at once, in sizes from 0 bytes to over the 256 KiB read size, and compare them with
// what was sent once everything arrived: a view of the shared buffer would show other bytes by then.
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { type WebSocket } from '../../lib/index.js'
import { deadline } from './helpers.js'

interface Kept { messages: Array<{ data: Buffer, binary: boolean }>, pings: Buffer[], dataListeners: number }

async function server (t: Test, sharedReadBuffer?: boolean): Promise<{ port: number, kept: Kept[] }> {
  const app = Fastify()
  await app.register(websocket, { maxPayload: 4 * 1024 * 1024, ...(sharedReadBuffer === undefined ? {} : { sharedReadBuffer }) })
  const kept: Kept[] = []
  app.ws('/keep', (socket: WebSocket, request) => {
    const k: Kept = { messages: [], pings: [], dataListeners: (request.raw.socket as Socket).listenerCount('data') }
    kept.push(k)
    socket.on('message', (data, binary) => { k.messages.push({ data, binary }) })
    socket.on('ping', (data) => { k.pings.push(data) })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return { port: (app.server.address() as { port: number }).port, kept }
}

/** sizes around every path: empty, small, the 125/126 and 65535/65536 header edges, over a read */
const SIZES = [0, 1, 31, 125, 126, 511, 512, 4095, 4096, 65535, 65536, 200_000, 300_000, 1_100_000]

function plan (seed: number): Array<{ data: Buffer, binary: boolean } | { ping: Buffer }> {
  const out: Array<{ data: Buffer, binary: boolean } | { ping: Buffer }> = []
  for (let i = 0; i < SIZES.length * 3; i++) {
    const size = SIZES[(i * 7 + seed) % SIZES.length]
    if (i % 5 === 4) out.push({ ping: randomBytes(1 + (i % 125)) })
    else if (i % 2 === 0) out.push({ data: randomBytes(size), binary: true })
    else out.push({ data: Buffer.from('é€'.repeat(Math.ceil(size / 5)).slice(0, Math.ceil(size / 3))), binary: false })
  }
  return out
}

async function sendAll (port: number, items: ReturnType<typeof plan>, fragment: boolean): Promise<WsClient> {
  const client = new WsClient(`ws://127.0.0.1:${port}/keep`, { perMessageDeflate: false })
  await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'open')
  for (const item of items) {
    if ('ping' in item) client.ping(item.ping)
    else if (fragment && item.data.length > 2) {
      // three frames: a fragmented message crosses reads in the accumulator
      const third = Math.floor(item.data.length / 3)
      client.send(item.data.subarray(0, third), { binary: item.binary, fin: false })
      client.send(item.data.subarray(third, 2 * third), { binary: item.binary, fin: false })
      client.send(item.data.subarray(2 * third), { binary: item.binary, fin: true })
    } else client.send(item.data, { binary: item.binary })
  }
  return client
}

function expectKept (t: Test, k: Kept, items: ReturnType<typeof plan>, who: string): void {
  const messages = items.filter((i): i is { data: Buffer, binary: boolean } => 'data' in i)
  const pings = items.filter((i): i is { ping: Buffer } => 'ping' in i)
  t.equal(k.messages.length, messages.length, `${who}: every message arrived`)
  let same = 0
  for (let i = 0; i < messages.length; i++) {
    if (k.messages[i]?.binary === messages[i].binary && k.messages[i]?.data.equals(messages[i].data)) same++
  }
  t.equal(same, messages.length, `${who}: every kept message still holds its own bytes`)
  t.same(k.pings.map((p) => p.toString('hex')), pings.map((p) => p.ping.toString('hex')), `${who}: every kept ping payload still holds its own bytes`)
}

async function run (t: Test, sharedReadBuffer: boolean | undefined, fragment: boolean): Promise<Kept[]> {
  const { port, kept } = await server(t, sharedReadBuffer)
  const a = plan(1)
  const b = plan(4)
  const [ca, cb] = await Promise.all([sendAll(port, a, fragment), sendAll(port, b, fragment)])
  const total = (p: ReturnType<typeof plan>): number => p.length
  await deadline((async () => {
    while (kept.length < 2 || kept[0].messages.length + kept[0].pings.length < total(a) || kept[1].messages.length + kept[1].pings.length < total(b)) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })(), 'all messages', 20000)
  // which record is which client: by the first message (different sizes for the two plans)
  const firstA = (a[0] as { data: Buffer }).data
  const ka = kept.find((k) => k.messages[0]?.data.equals(firstA)) ?? kept[0]
  const kb = kept.find((k) => k !== ka) as Kept
  expectKept(t, ka, a, 'client A')
  expectKept(t, kb, b, 'client B')
  ca.close()
  cb.close()
  return kept
}

t.test('default: sockets read into the shared buffer, and every kept message and ping payload survives later reads', async (t) => {
  const kept = await run(t, undefined, false)
  t.same(kept.map((k) => k.dataListeners), [0, 0], "the sockets have no 'data' listener: they read into the shared buffer")
})

t.test('fragmented messages and large frames across reads keep their bytes too', async (t) => {
  await run(t, undefined, true)
})

t.test("sharedReadBuffer: false keeps Node's reads ('data' events), with the same results", async (t) => {
  const kept = await run(t, false, false)
  t.same(kept.map((k) => k.dataListeners), [1, 1], "each socket has the WebSocket's 'data' listener")
})

t.test('sharedReadBuffer must be a boolean', async (t) => {
  const app = Fastify()
  await app.register(websocket)
  t.throws(() => app.ws('/bad', { sharedReadBuffer: 'yes' } as any, () => {}), /sharedReadBuffer must be a boolean/)
  t.doesNotThrow(() => app.ws('/good', { sharedReadBuffer: false }, () => {}))
  await app.close()
})
