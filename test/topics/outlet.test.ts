// One outlet for bytes: everything sent to one socket within one tick leaves in one write, from
// wherever it was sent (its own send(), a broadcast, an answer to its read); limits still hold.
import t from 'tap'
import type net from 'node:net'
import { broadcast, PreparedMessage } from '../../lib/index.js'
import { deadline, tcpPair } from '../hostile/helpers.js'

const off = { heartbeatInterval: 0, incompleteMessageTimeout: 0 }

/** Count the writes a server socket hands to the operating system (Node's _write/_writev). */
function countWrites (socket: net.Socket): { count: number } {
  const counter = { count: 0 }
  const s = socket as unknown as { _write: (...a: unknown[]) => unknown, _writev: (...a: unknown[]) => unknown }
  const write = s._write
  const writev = s._writev
  s._write = function (this: unknown, ...args: unknown[]) { counter.count++; return write.apply(this, args) }
  s._writev = function (this: unknown, ...args: unknown[]) { counter.count++; return writev.apply(this, args) }
  return counter
}

t.test('50 broadcasts and a send in one tick leave each socket in one write, in order', async (t) => {
  const pairs = await Promise.all([tcpPair(off), tcpPair(off), tcpPair(off)])
  t.teardown(() => Promise.all(pairs.map((p) => p.close())))
  const counters = pairs.map((p) => countWrites(p.serverSocket))
  const sockets = pairs.map((p) => p.ws)
  let accepted = 0
  for (let i = 0; i < 50; i++) {
    accepted += broadcast(sockets, `event ${i}`)
    if (i === 24) sockets[0].send('own send in the middle')
  }
  t.equal(accepted, 150, 'every socket accepted every event')
  t.ok(sockets[0].bufferedAmount > 50 * 8, 'bufferedAmount counts the output waiting for the end of the tick')
  await deadline(Promise.all(pairs.map((p, i) => p.client.waitFrames(i === 0 ? 51 : 50))), 5000, 'every frame')
  t.same(counters.map((c) => c.count), [1, 1, 1], 'one write per socket')
  const first = pairs[0].client.frames().map((f) => f.payload.toString())
  t.same(first.slice(24, 27), ['event 24', 'own send in the middle', 'event 25'], 'in the order sent')
  t.same(pairs[1].client.frames().map((f) => f.payload.toString()), Array.from({ length: 50 }, (_, i) => `event ${i}`))
  t.equal(sockets[0].bufferedAmount, 0)
})

t.test("an answer to a socket's read and a broadcast started by another socket's read share one write", async (t) => {
  const a = await tcpPair(off)
  const b = await tcpPair(off)
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const writesA = countWrites(a.serverSocket)
  const event = new PreparedMessage('from b')
  b.ws.on('message', () => {
    a.ws.send('direct')
    broadcast([a.ws, b.ws], event)
    a.ws.ping('p')
  })
  // a masked text frame 'go' from b's client
  b.client.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'g'.charCodeAt(0) ^ 1, 'o'.charCodeAt(0) ^ 2]))
  const frames = await a.client.waitFrames(3)
  t.same(frames.map((f) => [f.opcode, f.payload.toString()]), [[1, 'direct'], [1, 'from b'], [9, 'p']])
  t.equal(writesA.count, 1, 'one write for the three frames')
})

t.test('maxBufferedAmount applies to what waits for the end of the tick', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, maxBufferedAmount: 1000, bufferedAmountPolicy: 'drop' })
  t.teardown(close)
  const dropped: number[] = []
  ws.on('dropped', (size: number) => dropped.push(size))
  const message = new PreparedMessage(Buffer.alloc(98)) // a 100-byte frame
  let accepted = 0
  for (let i = 0; i < 20; i++) if (broadcast([ws], message) === 1) accepted++
  t.equal(accepted, 10, 'ten frames fill the 1,000 bytes; the rest are dropped')
  t.equal(dropped.length, 10)
  await client.waitFrames(10)
  t.equal(client.frames().length, 10)
})
