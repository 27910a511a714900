/**
 * Autobahn server cases 7.* (close handling), from RFC 6455 §5.5.1, §7 and the published case
 * descriptions, over real sockets with the raw client.
 *
 * Covered: 7.1.1 (message then close: echo, then close), 7.1.2 (close twice: one answer), 7.1.3
 * (ping after close: no pong), 7.1.4 (text after close: no echo), 7.1.5 (close between the
 * fragments of a message: no echo), 7.1.6 (256 KiB message, small message, close, ping: both
 * echoes, the close, no pong), 7.3.1 (empty close), 7.3.2 (1-byte close body -> 1002), 7.3.3
 * (1000 without reason), 7.3.4 (1000 with reason), 7.3.5 (123-byte reason), 7.3.6 (124-byte
 * reason, a 126-byte control frame -> 1002), 7.5.1 (reason not UTF-8 -> 1007), 7.7.1-7.7.13
 * (valid codes 1000-1003, 1007-1011, 3000, 3999, 4000, 4999 echoed, and beyond Autobahn
 * 1012-1014), 7.9.1-7.9.9 (invalid codes 0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999 ->
 * 1002), 7.13.1-7.13.2 (codes 5000 and 65535: we answer 1002), plus 1015.
 * Beyond Autobahn: the server closes TCP after the handshake (also when the server starts it),
 * and the server-side close event carries the peer's code.
 */
import t from 'tap'
import { close, closeBody, continuation, encodeFrame, expectClose, expectText, Op, ping, summarize, text } from '../helpers/raw-client.js'
import { echoServer, type ServerSide } from './helpers.js'

const server = await echoServer()
t.teardown(() => server.app.close())

function serverClosed (side: ServerSide): Promise<{ code: number, reason: string, wasClean: boolean }> {
  return new Promise((resolve) => {
    side.ws.once('close', (code: number, reason: Buffer, wasClean: boolean) => resolve({ code, reason: reason.toString(), wasClean }))
  })
}

t.test('7.1.1: a message then a close: the echo, then the close echo, then TCP closed by the server', async (t) => {
  const c = await server.connect()
  const side = serverClosed(server.last())
  await c.send(text('Hello World'), close(1000))
  t.same(await c.rest(), [expectText('Hello World'), expectClose(1000)])
  t.ok(c.ended, 'the server closed TCP (the client never ends first)')
  t.same(await side, { code: 1000, reason: '', wasClean: true })
})

t.test('7.1.2: close twice: one close answer', async (t) => {
  const c = await server.connect()
  await c.send(close(1000), close(1000))
  t.same(await c.rest(), [expectClose(1000)])
})

t.test('7.1.3: a ping after the close is not answered', async (t) => {
  // §5.5.2: a Pong is sent in response "unless it already received a Close frame"
  const c = await server.connect()
  await c.send(close(1000), ping('after close'))
  t.same(await c.rest(), [expectClose(1000)])
})

t.test('7.1.4: a text message after the close is ignored', async (t) => {
  // §1.4: "After sending a control frame indicating the connection should be closed, a peer does not send any further data"
  const c = await server.connect()
  await c.send(close(1000), text('after close'))
  t.same(await c.rest(), [expectClose(1000)])
})

t.test('7.1.5: a close between the fragments of a message: the message is not echoed', async (t) => {
  const c = await server.connect()
  await c.send(text('fragment1', { fin: false }), close(1000), continuation('fragment2'))
  t.same(await c.rest(), [expectClose(1000)])
})

t.test('7.1.6: 256 KiB message, a small message, close, ping: both echoes, the close, no pong', async (t) => {
  const c = await server.connect()
  const big = 'BAsd7&jh23'.repeat(26215).slice(0, 256 * 1024)
  await c.send(text(big), text('Hello World!'), close(1000), ping())
  t.same(await c.rest(), [expectText(big), expectText('Hello World!'), expectClose(1000)])
})

t.test('7.3.1: an empty close is answered with an empty close', async (t) => {
  const c = await server.connect()
  const side = serverClosed(server.last())
  await c.send(close())
  t.same(await c.rest(), [expectClose()])
  t.same(await side, { code: 1005, reason: '', wasClean: true }, 'read as 1005 No Status Received')
})

t.test('7.3.2: a close with a 1-byte body: 1002', async (t) => {
  // §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned integer"
  const c = await server.connect()
  await c.send(encodeFrame({ opcode: Op.Close, payload: Buffer.from([0x03]) }))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('7.3.3: close 1000 without reason', async (t) => {
  const c = await server.connect()
  await c.send(close(1000))
  t.same(await c.rest(), [expectClose(1000)])
})

t.test('7.3.4: close 1000 with a reason: the code is echoed', async (t) => {
  const c = await server.connect()
  const side = serverClosed(server.last())
  await c.send(close(1000, 'Hello World!'))
  t.same(await c.rest(), [expectClose(1000)])
  t.same(await side, { code: 1000, reason: 'Hello World!', wasClean: true }, 'the reason reaches the server side')
})

t.test('7.3.5: close with a 123-byte reason (a 125-byte frame)', async (t) => {
  const c = await server.connect()
  const side = serverClosed(server.last())
  const reason = '*'.repeat(123)
  await c.send(close(1000, reason))
  t.same(await c.rest(), [expectClose(1000)])
  t.equal((await side).reason, reason)
})

t.test('7.3.6: close with a 124-byte reason (a 126-byte control frame): 1002', async (t) => {
  const c = await server.connect()
  await c.send(close(1000, '*'.repeat(124)))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('7.5.1: a close reason that is not UTF-8: 1007', async (t) => {
  // §5.5.1: the reason is UTF-8; §8.1: invalid UTF-8 MUST _Fail the WebSocket Connection_ (1007 per §7.4.1)
  const c = await server.connect()
  await c.send(encodeFrame({ opcode: Op.Close, payload: closeBody(1000, Buffer.from('cebae1bdb9cf83cebcceb5eda080656469746564', 'hex')) }))
  t.same(await c.rest(), [expectClose(1007)])
})

t.test('7.5.1 variant: a reason cut inside a code point: 1007', async (t) => {
  const c = await server.connect()
  await c.send(encodeFrame({ opcode: Op.Close, payload: closeBody(1000, Buffer.from([0x61, 0xe2, 0x82])) }))
  t.same(await c.rest(), [expectClose(1007)])
})

// §7.4.1 / §7.4.2 and the IANA registry: 1000-1003 and 1007-1014 are defined, 3000-4999 are for
// libraries and applications
const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
valid.forEach((code, i) => {
  t.test(`7.7.${i + 1}: valid close code ${code} is echoed`, async (t) => {
    const c = await server.connect()
    const side = serverClosed(server.last())
    await c.send(close(code))
    t.same(await c.rest(), [expectClose(code)])
    t.equal((await side).code, code)
  })
})

t.test('valid close codes 1012-1014 (IANA registry) are echoed', async (t) => {
  for (const code of [1012, 1013, 1014]) {
    const c = await server.connect()
    await c.send(close(code, 'reason'))
    t.same(await c.rest(), [expectClose(code)], `code ${code}`)
  }
})

// §7.4.1: 1004 reserved; 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control
// frame by an endpoint"; 0-999 "not used"; 1016-2999 reserved for this RFC and extensions
const invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
invalid.forEach((code, i) => {
  t.test(`7.9.${i + 1}: invalid close code ${code}: 1002`, async (t) => {
    const c = await server.connect()
    await c.send(close(code))
    t.same(await c.rest(), [expectClose(1002)])
  })
})

for (const [label, code] of [['7.13.1', 5000], ['7.13.2', 65535], ['(1015)', 1015]] as const) {
  t.test(`${label}: close code ${code}: 1002`, async (t) => {
    const c = await server.connect()
    await c.send(close(code))
    t.same(await c.rest(), [expectClose(1002)])
  })
}

t.test('data after a close is ignored, even a protocol violation or garbage', async (t) => {
  const c = await server.connect()
  await c.send(close(4000), encodeFrame({ opcode: 3 }), text('x', { mask: null }), Buffer.from([0xff, 0xff, 0xff, 0xff]))
  t.same(await c.rest(), [expectClose(4000)])
})

t.test('a server-initiated close: the client answers, then the server closes TCP', async (t) => {
  const c = await server.connect()
  const side = server.last()
  const closed = serverClosed(side)
  side.ws.close(4001, 'server bye')
  const frame = await c.nextFrame()
  t.same(summarize(frame), expectClose(4001, 'server bye'))
  t.notOk(c.ended, 'the server waits for the answer before closing TCP')
  await c.send(close(4001))
  t.same(await c.rest(), [], 'nothing after the close')
  t.same(await closed, { code: 4001, reason: '', wasClean: true })
})
