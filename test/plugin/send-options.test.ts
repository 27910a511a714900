// send(data, [options], [cb]) with ws's options: binary, compress, fin (fragments), mask (refused).
import t from 'tap'
import { once } from 'node:events'
import Fastify from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { broadcast, type WebSocket } from '../../lib/index.js'
import { closeCodeOf, deadline, tcpPair } from '../hostile/helpers.js'

const off = { heartbeatInterval: 0, incompleteMessageTimeout: 0 }

t.test("the ws echo line send(data, { binary: isBinary }) keeps each message's type and never crashes", async (t) => {
  const app = Fastify()
  await app.register(websocket)
  app.ws('/echo', (socket) => {
    socket.on('message', (data: Buffer, isBinary: boolean) => { socket.send(data, { binary: isBinary }) })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const client = new WsClient(`ws://127.0.0.1:${port}/echo`)
  await once(client, 'open')
  const got: Array<[string, boolean]> = []
  const four = deadline(new Promise<void>((resolve) => {
    client.on('message', (data: Buffer, isBinary: boolean) => { got.push([data.toString(), isBinary]); if (got.length === 4) resolve() })
  }), 5000, 'four echoes')
  client.send('text one')
  client.send(Buffer.from('binary one'))
  client.send('héllo')
  client.send(Buffer.from([0xff, 0xfe]))
  await four
  t.same(got, [['text one', false], ['binary one', true], ['héllo', false], [Buffer.from([0xff, 0xfe]).toString(), true]])
  client.close()
  await once(client, 'close')
})

t.test('binary forces the opcode; a text frame of bytes must be UTF-8', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)
  ws.send('as bytes', { binary: true })
  ws.send(Buffer.from('ünïcode'), { binary: false })
  ws.send(new Uint8Array([0x68, 0x69]), { binary: false })
  ws.send({ json: 1 }, { binary: true })
  ws.send('plain')
  // RFC 6455 §8.1: a text frame carries UTF-8; a server never sends invalid UTF-8 as text
  let thrown: (Error & { code?: string }) | undefined
  try { ws.send(Buffer.from([0xc3, 0x28]), { binary: false }) } catch (err) { thrown = err as Error }
  t.equal(thrown?.code, 'FST_ERR_WS_INVALID_UTF8', 'invalid UTF-8 as text throws at the call')
  const frames = await client.waitFrames(5)
  t.same(frames.map((f) => [f.opcode, f.fin, f.payload.toString()]), [
    [2, true, 'as bytes'], [1, true, 'ünïcode'], [1, true, 'hi'], [2, true, '{"json":1}'], [1, true, 'plain']
  ])
})

t.test('the callback may be the second or the third argument', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)
  const calls: string[] = []
  const done = new Promise<void>((resolve) => {
    ws.send('a', (err) => { calls.push(`a ${String(err ?? null)}`) })
    ws.send('b', { binary: true }, (err) => { calls.push(`b ${String(err ?? null)}`) })
    ws.send('c', undefined, (err) => { calls.push(`c ${String(err ?? null)}`); resolve() })
  })
  await deadline(done, 5000, 'callbacks')
  await client.waitFrames(3)
  t.same(calls, ['a null', 'b null', 'c null'])
})

t.test('wrong-typed arguments throw a coded error at the call and send nothing', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)
  const cases: Array<[string, () => unknown, string]> = [
    ['options a string', () => ws.send('x', 'binary' as never), 'FST_ERR_WS_INVALID_SEND_OPTIONS'],
    ['options a number', () => ws.send('x', 1 as never), 'FST_ERR_WS_INVALID_SEND_OPTIONS'],
    ['options null', () => ws.send('x', null as never), 'FST_ERR_WS_INVALID_SEND_OPTIONS'],
    ['binary a string', () => ws.send('x', { binary: 'yes' as never }), 'FST_ERR_WS_INVALID_SEND_OPTIONS'],
    ['compress a number', () => ws.send('x', { compress: 1 as never }), 'FST_ERR_WS_INVALID_SEND_OPTIONS'],
    ['fin a string', () => ws.send('x', { fin: 'no' as never }), 'FST_ERR_WS_INVALID_SEND_OPTIONS'],
    ['mask a string', () => ws.send('x', { mask: 'no' as never }), 'FST_ERR_WS_INVALID_SEND_OPTIONS'],
    ['callback a number', () => ws.send('x', {}, 42 as never), 'FST_ERR_WS_INVALID_CALLBACK'],
    ['callback an object', () => ws.send('x', { binary: true }, {} as never), 'FST_ERR_WS_INVALID_CALLBACK'],
    // RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client"
    ['mask: true from a server', () => ws.send('x', { mask: true }), 'FST_ERR_WS_MASK_REFUSED'],
    ['data a number', () => ws.send(42 as never, { binary: true }), 'FST_ERR_WS_INVALID_DATA'],
    ['data a Date', () => ws.send(new Date() as never), 'FST_ERR_WS_INVALID_DATA']
  ]
  for (const [what, call, code] of cases) {
    let thrown: (Error & { code?: string }) | undefined
    try { call() } catch (err) { thrown = err as Error }
    t.ok(thrown instanceof TypeError || thrown instanceof RangeError, `${what}: a TypeError or RangeError`)
    t.equal(thrown?.code, code, `${what}: ${code}`)
  }
  ws.send('still fine', { mask: false })
  const frames = await client.waitFrames(1)
  t.same(frames.map((f) => f.payload.toString()), ['still fine'], 'nothing else reached the wire')
  t.equal(ws.readyState, 1)
})

t.test('fin: false streams one message in fragments; control frames interleave, other messages wait', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)
  ws.send('hel', { fin: false })
  ws.ping('p')
  // a broadcast started while the message streams waits until it ends (RFC 6455 §5.4: the
  // fragments of a message are not interleaved with other data frames)
  t.equal(broadcast([ws], Buffer.from('other')), 1)
  ws.send(Buffer.from('lo '), { fin: false })
  // UTF-8 may be split between fragments: 'é' is c3 a9
  ws.send(Buffer.from([0xc3]), { fin: false, binary: false })
  ws.send(Buffer.from([0xa9]), { binary: false })
  ws.send('after')
  const frames = await client.waitFrames(7)
  t.same(frames.map((f) => [f.opcode, f.fin, f.payload.toString('latin1')]), [
    [1, false, 'hel'],
    [9, true, 'p'],
    [0, false, 'lo '],
    [0, false, '\xc3'],
    [0, true, '\xa9'],
    [2, true, 'other'],
    [1, true, 'after']
  ])
})

t.test('a fragmented text message must be UTF-8 as a whole', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)
  ws.send(Buffer.from([0xc3]), { fin: false, binary: false })
  let thrown: (Error & { code?: string }) | undefined
  try { ws.send(Buffer.from([0x28]), { binary: false }) } catch (err) { thrown = err as Error }
  t.equal(thrown?.code, 'FST_ERR_WS_INVALID_UTF8', 'a continuation that breaks the UTF-8 sequence throws')
  // an unfinished sequence at fin: true also throws
  thrown = undefined
  try { ws.send(Buffer.from([0xa9, 0xe2, 0x82]), { binary: false }) } catch (err) { thrown = err as Error }
  t.equal(thrown?.code, 'FST_ERR_WS_INVALID_UTF8', 'a message ending inside a code point throws')
  ws.send(Buffer.from([0xa9]), { binary: false })
  const frames = await client.waitFrames(2)
  t.same(frames.map((f) => [f.opcode, f.fin, [...f.payload]]), [[1, false, [0xc3]], [0, true, [0xa9]]])
})

t.test('compress: false skips permessage-deflate for that message only', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, perMessageDeflate: { params: { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }, threshold: 0 } })
  t.teardown(close)
  ws.send('squeeze me please, squeeze me please')
  ws.send('leave me as I am', { compress: false })
  ws.send('squeeze me too, squeeze me too')
  const frames = await client.waitFrames(3)
  t.same(frames.map((f) => f.rsv), [4, 0, 4], 'RSV1 (compressed) on the first and third only')
  t.equal(frames[1].payload.toString(), 'leave me as I am')
})

t.test('close() while a message streams ends it with the Close frame', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)
  ws.send('part', { fin: false })
  ws.close(1000)
  const frames = await client.waitFrames(2)
  t.same(frames.map((f) => [f.opcode, f.fin]), [[1, false], [8, true]])
  t.equal(closeCodeOf(frames[1]), 1000)
  t.equal(ws.send('late', { fin: false }), false, 'nothing more is sent once closing')
})
