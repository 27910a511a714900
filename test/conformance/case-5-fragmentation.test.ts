/**
 * Autobahn server cases 5.* (fragmentation), from RFC 6455 §5.4 / §5.5 and the published case
 * descriptions, over real sockets with the raw client.
 *
 * Covered: 5.1 (ping in 2 fragments -> 1002), 5.2 (pong in 2 fragments -> 1002), 5.3-5.5 (text
 * in 2 fragments: whole, in 1-byte chops, frame by frame), 5.6-5.8 (the same with a ping between
 * the fragments: pong first, then the echo), 5.9-5.11 (continuation with FIN=1 and nothing to
 * continue, then a text message: 1002), 5.12-5.14 (the same with FIN=0), 5.15 (a fragmented text
 * message, then a stray continuation, then a text: echo, then 1002), 5.16 (2x: stray
 * continuation FIN=0, then a fragmented text: 1002 at once), 5.17 (the same with FIN=1), 5.18
 * (two fragments both with opcode text: 1002), 5.19 (5 fragments with 2 pings in between, sent in
 * two bursts: pongs as they come, then the echo), 5.20 (the same sent frame by frame).
 * Beyond Autobahn: 1-byte fragments, empty fragments, control frames between every fragment,
 * a binary message started inside a fragmented text message, whole and in chops.
 *
 * Every case asserts the exact frames received and that the server closes TCP.
 */
import t from 'tap'
import { continuation, encodeFrame, expectBinary, expectClose, expectPong, expectText, Op, ping, pong, text } from '../helpers/raw-client.js'
import { echoServer } from './helpers.js'

const server = await echoServer()
t.teardown(() => server.app.close())

const frag1 = 'fragment1'
const frag2 = 'fragment2'

t.test('5.1: a ping in 2 fragments fails with 1002', async (t) => {
  // §5.5: "Control frames themselves MUST NOT be fragmented."
  const c = await server.connect()
  await c.send(ping(frag1, { fin: false }), continuation(frag2))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('5.2: a pong in 2 fragments fails with 1002', async (t) => {
  const c = await server.connect()
  await c.send(pong(frag1, { fin: false }), continuation(frag2))
  t.same(await c.rest(), [expectClose(1002)])
})

const twoFragments = (): Buffer[] => [text(frag1, { fin: false }), continuation(frag2)]

t.test('5.3: text in 2 fragments is echoed as one message', async (t) => {
  const c = await server.connect()
  await c.send(...twoFragments())
  t.same(await c.closeAndRest(), [expectText(frag1 + frag2), expectClose(1000)])
})

t.test('5.4: text in 2 fragments, octets sent in 1-byte chops', async (t) => {
  const c = await server.connect()
  await c.sendChopped(Buffer.concat(twoFragments()), 1)
  t.same(await c.closeAndRest(), [expectText(frag1 + frag2), expectClose(1000)])
})

t.test('5.5: text in 2 fragments, frame by frame (the server holds the first)', async (t) => {
  const c = await server.connect()
  const [a, b] = twoFragments()
  await c.send(a)
  await c.send(ping('still open'))
  t.same(await c.next(), [expectPong('still open')], 'nothing but the pong while the message is incomplete')
  await c.send(b)
  t.same(await c.closeAndRest(), [expectText(frag1 + frag2), expectClose(1000)])
})

const withPing = (): Buffer[] => [text(frag1, { fin: false }), ping('pongme!'), continuation(frag2)]

t.test('5.6: text in 2 fragments with a ping in between: pong, then the echo', async (t) => {
  // §5.4: "An endpoint MUST be capable of handling control frames in the middle of a fragmented message."
  const c = await server.connect()
  await c.send(...withPing())
  t.same(await c.closeAndRest(), [expectPong('pongme!'), expectText(frag1 + frag2), expectClose(1000)])
})

t.test('5.7: the same in 1-byte chops', async (t) => {
  const c = await server.connect()
  await c.sendChopped(Buffer.concat(withPing()), 1)
  t.same(await c.closeAndRest(), [expectPong('pongme!'), expectText(frag1 + frag2), expectClose(1000)])
})

t.test('5.8: the same frame by frame, the pong awaited before the last fragment', async (t) => {
  const c = await server.connect()
  const [a, p, b] = withPing()
  await c.send(a)
  await c.send(p)
  t.same(await c.next(), [expectPong('pongme!')])
  await c.send(b)
  t.same(await c.closeAndRest(), [expectText(frag1 + frag2), expectClose(1000)])
})

// §5.4: a continuation frame only continues a fragmented message; otherwise it is a protocol error
for (const [first, fin] of [[9, true], [12, false]] as const) {
  const bytes = (): Buffer => Buffer.concat([continuation('non-continuation payload', { fin }), text('Hello, world!')])
  t.test(`5.${first}: continuation with FIN=${fin ? 1 : 0} and nothing to continue, then text: 1002`, async (t) => {
    const c = await server.connect()
    await c.send(bytes())
    t.same(await c.rest(), [expectClose(1002)])
  })
  t.test(`5.${first + 1}: the same in 1-byte chops`, async (t) => {
    const c = await server.connect()
    await c.sendChopped(bytes(), 1)
    t.same(await c.rest(), [expectClose(1002)])
  })
  t.test(`5.${first + 2}: the same frame by frame`, async (t) => {
    const c = await server.connect()
    await c.send(continuation('non-continuation payload', { fin }))
    t.same(await c.rest(), [expectClose(1002)], 'failed on the stray continuation, before the text is sent')
  })
}

t.test('5.15: fragmented text, then a stray continuation (FIN=0), then text: echo, then 1002', async (t) => {
  const c = await server.connect()
  await c.send(text(frag1, { fin: false }), continuation(frag2), continuation('fragment3', { fin: false }), text('fragment4'))
  t.same(await c.rest(), [expectText(frag1 + frag2), expectClose(1002)])
})

for (const [n, fin] of [[16, false], [17, true]] as const) {
  t.test(`5.${n}: 2x (stray continuation FIN=${fin ? 1 : 0}, fragmented text): 1002 at the first frame`, async (t) => {
    const c = await server.connect()
    const once = [continuation('fragment1', { fin }), text('fragment2', { fin: false }), continuation('fragment3')]
    await c.send(...once, ...once)
    t.same(await c.rest(), [expectClose(1002)])
  })
}

t.test('5.18: text in 2 fragments where both carry opcode text: 1002', async (t) => {
  // §5.4: a fragmented message is one frame with an opcode followed by continuation frames;
  // a new data frame inside it is a protocol error
  const c = await server.connect()
  await c.send(text(frag1, { fin: false }), text(frag2))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('5.19: 5 fragments with 2 pings, in two bursts: each pong comes while the message is incomplete', async (t) => {
  const c = await server.connect()
  await c.send(text('fragment1', { fin: false }), continuation('fragment2', { fin: false }), ping('pongme 1!'))
  t.same(await c.next(), [expectPong('pongme 1!')])
  await c.send(continuation('fragment3', { fin: false }), continuation('fragment4', { fin: false }), ping('pongme 2!'), continuation('fragment5'))
  t.same(await c.closeAndRest(), [expectPong('pongme 2!'), expectText('fragment1fragment2fragment3fragment4fragment5'), expectClose(1000)])
})

t.test('5.20: the same, frame by frame', async (t) => {
  const c = await server.connect()
  for (const f of [text('fragment1', { fin: false }), continuation('fragment2', { fin: false }), ping('pongme 1!')]) await c.send(f)
  t.same(await c.next(), [expectPong('pongme 1!')])
  for (const f of [continuation('fragment3', { fin: false }), continuation('fragment4', { fin: false }), ping('pongme 2!')]) await c.send(f)
  t.same(await c.next(), [expectPong('pongme 2!')])
  await c.send(continuation('fragment5'))
  t.same(await c.closeAndRest(), [expectText('fragment1fragment2fragment3fragment4fragment5'), expectClose(1000)])
})

t.test('1-byte fragments, whole and in 1-byte chops, text and binary', async (t) => {
  const message = 'κόσμε: one byte per fragment, code points split across frames'
  const bytes = Buffer.from(message)
  for (const chopped of [false, true]) {
    for (const opcode of [Op.Text, Op.Binary]) {
      const frames: Buffer[] = []
      for (let i = 0; i < bytes.length; i++) {
        frames.push(encodeFrame({ opcode: i === 0 ? opcode : Op.Continuation, payload: bytes.subarray(i, i + 1), fin: i === bytes.length - 1 }))
      }
      const c = await server.connect()
      if (chopped) await c.sendChopped(Buffer.concat(frames), 1)
      else await c.send(...frames)
      t.same(await c.closeAndRest(), [opcode === Op.Text ? expectText(message) : expectBinary(bytes), expectClose(1000)], `${opcode === Op.Text ? 'text' : 'binary'}${chopped ? ' in chops' : ''}`)
    }
  }
})

t.test('empty fragments and a control frame between every fragment', async (t) => {
  const c = await server.connect()
  await c.send(
    text('', { fin: false }), ping('1'), continuation('ab', { fin: false }), pong('x'), continuation('', { fin: false }),
    ping('2'), continuation('c', { fin: false }), ping('3'), continuation('')
  )
  t.same(await c.closeAndRest(), [expectPong('1'), expectPong('2'), expectPong('3'), expectText('abc'), expectClose(1000)])
})

t.test('a binary frame inside a fragmented text message: 1002, also in chops', async (t) => {
  for (const chopped of [false, true]) {
    const c = await server.connect()
    const bytes = Buffer.concat([text('done'), text('a', { fin: false }), encodeFrame({ opcode: Op.Binary, payload: 'b' }), continuation('c')])
    if (chopped) await c.sendChopped(bytes, 3)
    else await c.send(bytes)
    t.same(await c.rest(), [expectText('done'), expectClose(1002)], chopped ? 'in chops' : 'whole')
  }
})

t.test('a close between fragments ends the connection; the partial message is not delivered', async (t) => {
  const c = await server.connect()
  await c.send(text(frag1, { fin: false }), encodeFrame({ opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]) }), continuation(frag2))
  t.same(await c.rest(), [expectClose(1000)])
})
