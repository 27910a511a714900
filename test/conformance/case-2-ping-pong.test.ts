/**
 * Autobahn server cases 2.* (pings and pongs), from RFC 6455 §5.5.2 / §5.5.3 and the published
 * case descriptions, over real sockets with the raw client.
 *
 * Covered: 2.1 (ping without payload), 2.2 (small text payload), 2.3 (small binary payload),
 * 2.4 (125-byte binary payload), 2.5 (126-byte payload -> 1002, no pong), 2.6 (125-byte ping in
 * 1-byte chops), 2.7 (unsolicited pong without payload is ignored), 2.8 (unsolicited pong with
 * payload is ignored), 2.9 (unsolicited pong, then ping: only that ping is answered), 2.10
 * (10 pings answered in order), 2.11 (10 pings in 1-byte chops answered in order). Beyond
 * Autobahn: every payload length 0..125, and a ping between the frames of a message.
 *
 * Every case asserts the exact frames received and that the server closes TCP.
 */
import t from 'tap'
import { binary, close, encodeFrame, expectBinary, expectClose, expectPong, Op, ping, pong } from '../helpers/raw-client.js'
import { echoServer } from './helpers.js'

const server = await echoServer()
t.teardown(() => server.app.close())

t.test('2.1: ping without payload gets a pong without payload', async (t) => {
  const c = await server.connect()
  await c.send(ping())
  t.same(await c.closeAndRest(), [expectPong(), expectClose(1000)])
})

t.test('2.2: ping with a small text payload gets a pong with the same payload', async (t) => {
  const c = await server.connect()
  await c.send(ping('Hello, world!'))
  t.same(await c.closeAndRest(), [expectPong('Hello, world!'), expectClose(1000)])
})

t.test('2.3: ping with a small binary payload', async (t) => {
  const c = await server.connect()
  const payload = Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])
  await c.send(ping(payload))
  t.same(await c.closeAndRest(), [expectPong(payload), expectClose(1000)])
})

t.test('2.4: ping with a 125-byte binary payload', async (t) => {
  const c = await server.connect()
  const payload = Buffer.alloc(125, 0xfe)
  await c.send(ping(payload))
  t.same(await c.closeAndRest(), [expectPong(payload), expectClose(1000)])
})

t.test('2.5: ping with a 126-byte payload fails the connection with 1002 and no pong', async (t) => {
  // §5.5: "All control frames MUST have a payload length of 125 bytes or less"
  const c = await server.connect()
  await c.send(ping(Buffer.alloc(126, 0xfe)))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('2.6: 125-byte ping sent in 1-byte chops', async (t) => {
  const c = await server.connect()
  const payload = Buffer.alloc(125, 0xfe)
  await c.sendChopped(ping(payload), 1)
  t.same(await c.closeAndRest(), [expectPong(payload), expectClose(1000)])
})

t.test('2.7: an unsolicited pong without payload is ignored', async (t) => {
  // §5.5.3: "A Pong frame MAY be sent unsolicited. ... A response to an unsolicited Pong frame is not expected."
  const c = await server.connect()
  await c.send(pong())
  t.same(await c.closeAndRest(), [expectClose(1000)])
})

t.test('2.8: an unsolicited pong with payload is ignored', async (t) => {
  const c = await server.connect()
  await c.send(pong('unsolicited pong payload'))
  t.same(await c.closeAndRest(), [expectClose(1000)])
})

t.test('2.9: unsolicited pong then ping: only the ping is answered', async (t) => {
  const c = await server.connect()
  await c.send(pong('unsolicited pong payload'), ping('ping payload'))
  t.same(await c.closeAndRest(), [expectPong('ping payload'), expectClose(1000)])
})

t.test('2.10: 10 pings are answered in order', async (t) => {
  const c = await server.connect()
  const frames = []
  const expected = []
  for (let i = 0; i < 10; i++) {
    frames.push(ping(`payload-${i}`))
    expected.push(expectPong(`payload-${i}`))
  }
  await c.send(...frames)
  t.same(await c.closeAndRest(), [...expected, expectClose(1000)])
})

t.test('2.11: 10 pings sent in 1-byte chops are answered in order', async (t) => {
  const c = await server.connect()
  const expected = []
  for (let i = 0; i < 10; i++) {
    await c.sendChopped(ping(`payload-${i}`), 1)
    expected.push(expectPong(`payload-${i}`))
  }
  t.same(await c.closeAndRest(), [...expected, expectClose(1000)])
})

t.test('every ping payload length 0..125 is echoed exactly (§5.5.2 "identical Application data")', async (t) => {
  const c = await server.connect()
  const frames = []
  const expected = []
  for (let n = 0; n <= 125; n++) {
    const payload = Buffer.alloc(n)
    for (let i = 0; i < n; i++) payload[i] = (n + i * 13) & 0xff
    frames.push(ping(payload))
    expected.push(expectPong(payload))
  }
  await c.send(...frames)
  t.same(await c.closeAndRest(), [...expected, expectClose(1000)])
})

t.test('a ping between two fragments is answered before the message is echoed', async (t) => {
  const c = await server.connect()
  await c.send(
    encodeFrame({ opcode: Op.Binary, payload: Buffer.from([1, 2]), fin: false }),
    ping('between'),
    encodeFrame({ opcode: Op.Continuation, payload: Buffer.from([3]) })
  )
  t.same(await c.closeAndRest(), [expectPong('between'), expectBinary(Buffer.from([1, 2, 3])), expectClose(1000)])
})

t.test('a ping and a message in the same read: pong and echo in arrival order, then the close echo', async (t) => {
  const c = await server.connect()
  await c.send(binary(Buffer.from([9])), ping('p'), binary(Buffer.from([8])), close(1000))
  t.same(await c.rest(), [expectBinary(Buffer.from([9])), expectPong('p'), expectBinary(Buffer.from([8])), expectClose(1000)])
})
