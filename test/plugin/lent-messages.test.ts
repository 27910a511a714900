// Lent messages (the `lentMessages` option, lib/connection/message-pool.ts): binary messages of
// 16 KiB or more are views of reused slabs, valid until the listener returns. These tests try
// to catch a slab reused too early: every way a lent message's bytes can outlive its listener
// (a send() still waiting for a slow reader, a publication to many sockets, an async listener,
// the queue and the iterator, a fragmented or split message) is checked byte for byte against
// what the client sent, after many later messages went through the pool; and the slabs in use
// must come back to 0 (also when a connection dies with lent bytes still unwritten).
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { type WebSocket } from '../../lib/index.js'
import { lentSlabsInUse } from '../../lib/connection/message-pool.js'
import { deadline, waitFor } from '../deflate/helpers.js'

const KiB = 1024

async function listen (t: Test, routes: (app: FastifyInstance) => void, plugin: Record<string, unknown> = {}): Promise<number> {
  const app = Fastify()
  await app.register(websocket, { maxPayload: 4 * 1024 * KiB, ...plugin })
  routes(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return (app.server.address() as { port: number }).port
}

async function open (t: Test, port: number, path: string): Promise<WsClient> {
  const client = new WsClient(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: false, maxPayload: 0 })
  await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), `open ${path}`)
  t.teardown(() => client.terminate())
  return client
}

/** The next `count` messages a client receives. */
function collect (client: WsClient, count: number, what: string, ms = 20_000): Promise<Buffer[]> {
  return deadline(new Promise((resolve) => {
    const got: Buffer[] = []
    const onMessage = (data: Buffer): void => {
      got.push(data)
      if (got.length === count) {
        client.off('message', onMessage)
        resolve(got)
      }
    }
    client.on('message', onMessage)
  }), what, ms)
}

/** How many of `got` hold exactly the bytes of `sent`, in order. */
function same (got: Buffer[], sent: Buffer[]): number {
  let n = 0
  for (let i = 0; i < sent.length; i++) if (got[i] !== undefined && Buffer.compare(got[i], sent[i]) === 0) n++
  return n
}

/** A counter whose promise resolves once it reached `target`. */
function counter (target: number): { tick: () => void, done: Promise<void> } {
  let n = 0
  let resolve!: () => void
  const done = new Promise<void>((r) => { resolve = r })
  return { tick: () => { if (++n === target) resolve() }, done }
}

t.beforeEach(async () => {
  await waitFor(() => lentSlabsInUse() === 0, 'no slab in use before the test')
})

t.test('a buffer kept past its listener is overwritten in lent mode (documented), never by default; a copy is safe', async (t) => {
  const kept: Record<string, Buffer[]> = { lent: [], copied: [], plain: [], small: [], text: [] }
  const got = counter(5 * 8)
  const port = await listen(t, (app) => {
    app.ws('/lent', { lentMessages: true }, (socket: WebSocket) => {
      socket.on('message', (data: Buffer, binary: boolean) => {
        if (!binary) kept.text.push(data)
        else if (data.length < 16 * KiB) kept.small.push(data)
        else {
          kept.lent.push(data)
          kept.copied.push(Buffer.from(data))
        }
        socket.send('ok')
        got.tick()
      })
    })
    app.ws('/plain', (socket: WebSocket) => {
      socket.on('message', (data: Buffer) => { kept.plain.push(data); socket.send('ok'); got.tick() })
    })
  })
  const lent = await open(t, port, '/lent')
  const plain = await open(t, port, '/plain')
  const big = Array.from({ length: 8 }, () => randomBytes(64 * KiB))
  const small = Array.from({ length: 8 }, () => randomBytes(16 * KiB - 1))
  const text = Array.from({ length: 8 }, () => Buffer.from(randomBytes(24 * KiB).toString('base64')))
  // one at a time (each answered before the next): every message is delivered after the last returned
  for (let i = 0; i < 8; i++) {
    for (const [client, data, binary] of [[lent, big[i], true], [lent, small[i], true], [lent, text[i], false], [plain, big[i], true]] as const) {
      const answer = collect(client, 1, `answer ${i}`)
      client.send(data, { binary })
      await answer
    }
  }
  // and 8 more to /plain, so that both routes saw as many messages
  for (let i = 0; i < 8; i++) {
    const answer = collect(plain, 1, 'answer')
    plain.send(big[i])
    await answer
  }
  await deadline(got.done, 'every message')
  t.equal(same(kept.copied, big), 8, 'lent: Buffer.from(data) in the listener keeps the bytes')
  t.equal(same(kept.lent, big), 1, 'lent: a kept view holds the bytes of a later message (only the last is still its own)')
  t.ok(Buffer.compare(kept.lent[0], big[7]) === 0, 'lent: the first message\'s view shows the last message: the slab was reused')
  t.equal(same(kept.plain, [...big, ...big]), 16, 'default: every kept buffer holds its own bytes')
  t.equal(same(kept.small, small), 8, 'lent: a message under 16 KiB is not lent')
  t.equal(same(kept.text, text), 8, 'lent: a text message is not lent')
  t.equal(lentSlabsInUse(), 0, 'no slab in use once the listeners returned')
})

t.test('send() of a lent buffer to a slow reader writes the right bytes after later messages reused the pool', async (t) => {
  let reader: WebSocket | undefined
  let held = -1
  const COUNT = 150
  const got = counter(COUNT)
  const port = await listen(t, (app) => {
    app.ws('/reader', (socket: WebSocket) => { reader = socket })
    app.ws('/writer', { lentMessages: true, maxBufferedAmount: 64 * 1024 * KiB }, (socket: WebSocket) => {
      socket.on('message', (data: Buffer) => {
        // the whole message, and a subarray of it: both views of the lent slab
        reader!.send(data)
        reader!.send(data.subarray(100, 20_100))
        got.tick()
      })
    })
  }, { maxBufferedAmount: 64 * 1024 * KiB })
  const slow = await open(t, port, '/reader')
  slow.pause() // reads nothing: the server's writes to it back up
  await waitFor(() => reader !== undefined, 'the reader connected')
  const writer = await open(t, port, '/writer')
  // more than the kernel's socket buffers take (~10 MiB on loopback)
  const sent = Array.from({ length: COUNT }, (_, i) => randomBytes(100 * KiB + i))
  for (const data of sent) writer.send(data)
  await deadline(got.done, 'every message at the server', 20_000)
  t.ok(reader!.bufferedAmount > 1024 * KiB, `the reader's output is backed up (${reader!.bufferedAmount} bytes)`)
  held = lentSlabsInUse()
  t.ok(held > 0, `slabs are held by writes still waiting (${held})`)
  const received = collect(slow, COUNT * 2, 'everything at the slow reader', 30_000)
  slow.resume()
  const all = await received
  const expected = sent.flatMap((data) => [data, data.subarray(100, 20_100)])
  t.equal(same(all, expected), COUNT * 2, 'every message and subarray arrived with its own bytes')
  await waitFor(() => lentSlabsInUse() === 0, 'the slabs are released once written')
  t.pass('slabs back to 0')
})

t.test('publish of a lent buffer to 100 subscribers', async (t) => {
  const SUBSCRIBERS = 100
  const COUNT = 6
  const port = await listen(t, (app) => {
    app.ws('/sub', (socket: WebSocket) => { socket.subscribe('room') })
    app.ws('/pub', { lentMessages: true }, (socket: WebSocket) => {
      socket.on('message', (data: Buffer) => { socket.publish('room', data) })
    })
  })
  const subs: WsClient[] = []
  for (let i = 0; i < SUBSCRIBERS; i++) subs.push(await open(t, port, '/sub'))
  // each subscriber's handler subscribed before its 101 reached the client
  const publisher = await open(t, port, '/pub')
  const sent = Array.from({ length: COUNT }, (_, i) => randomBytes(48 * KiB + i))
  const received = Promise.all(subs.map((s) => collect(s, COUNT, 'the publications', 30_000)))
  for (const data of sent) publisher.send(data)
  const all = await received
  t.equal(all.filter((got) => same(got, sent) === COUNT).length, SUBSCRIBERS, 'every subscriber got every publication with its own bytes')
  await waitFor(() => lentSlabsInUse() === 0, 'no slab in use')
  t.pass('slabs back to 0')
})

t.test('echo of fragmented, split and whole lent messages', async (t) => {
  const port = await listen(t, (app) => {
    app.ws('/echo', { lentMessages: true }, (socket: WebSocket) => {
      socket.on('message', (data: Buffer, binary: boolean) => { socket.send(data, { binary }) })
    })
  })
  const client = await open(t, port, '/echo')
  // whole frames, frames over the 256 KiB shared read (split across reads), and fragmented messages
  const sizes = [16 * KiB, 64 * KiB, 64 * KiB + 1, 300 * KiB, 1024 * KiB, 2 * 1024 * KiB + 3]
  const sent: Buffer[] = []
  for (let round = 0; round < 3; round++) for (const size of sizes) sent.push(randomBytes(size))
  const received = collect(client, sent.length, 'every echo', 30_000)
  for (let i = 0; i < sent.length; i++) {
    const data = sent[i]
    if (i % 3 === 1) {
      const third = Math.floor(data.length / 3)
      client.send(data.subarray(0, third), { binary: true, fin: false })
      client.send(data.subarray(third, 2 * third), { binary: true, fin: false })
      client.send(data.subarray(2 * third), { binary: true, fin: true })
    } else {
      client.send(data)
    }
  }
  t.equal(same(await received, sent), sent.length, 'every echo holds the bytes sent')
  await waitFor(() => lentSlabsInUse() === 0, 'no slab in use')
  t.pass('slabs back to 0')
})

t.test('an async listener keeps its lent buffer until its promise settles', async (t) => {
  const COUNT = 40
  const port = await listen(t, (app) => {
    app.ws('/async', { lentMessages: true }, (socket: WebSocket) => {
      socket.on('message', async (data: Buffer) => {
        // later messages are read and delivered meanwhile (each needs a slab)
        for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
        socket.send(data)
      })
    })
  })
  const client = await open(t, port, '/async')
  const sent = Array.from({ length: COUNT }, () => randomBytes(20 * KiB))
  const received = collect(client, COUNT, 'every echo')
  for (const data of sent) client.send(data)
  // the echoes come back in the order the listeners finish: compare as sets
  const got = (await received).map((b) => b.toString('hex')).sort()
  t.same(got, sent.map((b) => b.toString('hex')).sort(), 'every echo holds the bytes sent')
  await waitFor(() => lentSlabsInUse() === 0, 'no slab in use')
  t.pass('slabs back to 0')
})

t.test('the queue and the async iterator get copies', async (t) => {
  const COUNT = 30
  let slabsWhileQueued = -1
  const port = await listen(t, (app) => {
    app.ws('/iterate', { lentMessages: true }, async (socket: WebSocket) => {
      for await (const data of socket) {
        await new Promise((resolve) => setImmediate(resolve))
        socket.send(data as Buffer)
      }
    })
    app.ws('/late', { lentMessages: true }, (socket: WebSocket) => {
      // messages arrive before anybody listens: they are queued; the client's Ping comes after
      // them (a Ping's event is not queued), then a listener takes the queue
      socket.once('ping', () => {
        slabsWhileQueued = lentSlabsInUse()
        socket.on('message', (data: Buffer) => { socket.send(data) })
      })
    })
  })
  for (const path of ['/iterate', '/late']) {
    const client = await open(t, port, path)
    const sent = Array.from({ length: COUNT }, () => randomBytes(24 * KiB))
    const received = collect(client, COUNT, `every echo of ${path}`)
    for (const data of sent) client.send(data)
    if (path === '/late') client.ping()
    const got = await received
    t.equal(same(got, sent), COUNT, `${path}: every echo holds the bytes sent`)
  }
  t.equal(slabsWhileQueued, 0, 'the queued messages hold no slab (copies)')
  await waitFor(() => lentSlabsInUse() === 0, 'no slab in use')
  t.pass('slabs back to 0')
})

t.test('a connection closed with lent bytes still unwritten releases its slabs', async (t) => {
  let reader: WebSocket | undefined
  const COUNT = 60
  const got = counter(COUNT)
  const port = await listen(t, (app) => {
    app.ws('/reader', (socket: WebSocket) => { reader = socket })
    app.ws('/writer', { lentMessages: true }, (socket: WebSocket) => {
      socket.on('message', (data: Buffer) => { reader!.send(data); got.tick() })
    })
  }, { maxBufferedAmount: 64 * 1024 * KiB })
  const slow = await open(t, port, '/reader')
  slow.pause()
  await waitFor(() => reader !== undefined, 'the reader connected')
  const writer = await open(t, port, '/writer')
  for (let i = 0; i < COUNT; i++) writer.send(randomBytes(64 * KiB))
  await deadline(got.done, 'every message at the server')
  t.ok(lentSlabsInUse() > 0, 'slabs are held by unwritten bytes')
  const closed = new Promise((resolve) => reader!.once('close', resolve))
  slow.terminate()
  await deadline(closed, 'the reader closed')
  await waitFor(() => lentSlabsInUse() === 0, 'the slabs are released')
  t.pass('slabs back to 0')

  // and a message cut off in the middle (a lent accumulator never delivered)
  const cut = await open(t, port, '/writer')
  const frame = Buffer.alloc(10 + 4 + 100 * KiB)
  frame[0] = 0x82
  frame[1] = 0x80 | 127
  frame.writeUInt32BE(150 * KiB, 6) // announces 150 KiB, sends 100 KiB (mask key 0)
  const socket = (cut as unknown as { _socket: import('node:net').Socket })._socket
  await deadline(new Promise((resolve) => socket.write(frame, resolve)), 'the partial frame written')
  await waitFor(() => lentSlabsInUse() > 0, 'the partial message holds a slab')
  cut.terminate()
  await waitFor(() => lentSlabsInUse() === 0, 'the partial message\'s slab is released')
  t.pass('slabs back to 0')
})

t.test('a permessage-deflate connection does not lend', async (t) => {
  const kept: Buffer[] = []
  const port = await listen(t, (app) => {
    app.ws('/deflate', { lentMessages: true, perMessageDeflate: true }, (socket: WebSocket) => {
      socket.on('message', (data: Buffer) => { kept.push(data); socket.send('ok') })
    })
  })
  const client = new WsClient(`ws://127.0.0.1:${port}/deflate`, { perMessageDeflate: { threshold: 1 << 30 } })
  t.teardown(() => client.terminate())
  await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'open')
  const sent = Array.from({ length: 6 }, () => randomBytes(40 * KiB))
  for (const data of sent) {
    const answer = collect(client, 1, 'answer')
    client.send(data, { compress: false })
    await answer
  }
  t.equal(same(kept, sent), sent.length, 'uncompressed messages on a deflate connection are not lent')
  t.equal(lentSlabsInUse(), 0, 'no slab taken')
})

t.test('injectWS: what the in-memory client receives is its own, not a view of a reused slab', async (t) => {
  const app = Fastify()
  await app.register(websocket, { lentMessages: true })
  app.ws('/echo', (socket: WebSocket) => {
    socket.on('message', (data: Buffer) => { socket.send(data) })
  })
  t.teardown(() => app.close())
  await app.ready()
  const client = await app.injectWS('/echo')
  const sent = Array.from({ length: 8 }, () => randomBytes(64 * KiB))
  const kept: Buffer[] = []
  for (const data of sent) {
    const echo = deadline(new Promise<Buffer>((resolve) => client.once('message', (d: Buffer) => resolve(d))), 'the echo')
    client.send(data)
    kept.push(await echo) // kept without a copy: the client's messages are its own
  }
  t.equal(same(kept, sent), sent.length, 'every echo the client kept holds its own bytes')
  client.terminate()
  await waitFor(() => lentSlabsInUse() === 0, 'no slab in use')
  t.pass('slabs back to 0')
})
