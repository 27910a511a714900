/**
 * Autobahn server cases 3.* (reserved bits) and 4.* (reserved opcodes), from RFC 6455 §5.2 and
 * the published case descriptions, over real sockets with the raw client.
 *
 * Covered: 3.1 (text with RSV=1), 3.2 (text, text with RSV=2, ping), 3.3 (the same frame by
 * frame, waiting for the echo), 3.4 (text, RSV=4 text, ping, all in 1-byte chops), 3.5 (binary
 * with RSV=5), 3.6 (ping with RSV=6), 3.7 (close with RSV=7); beyond Autobahn every RSV value
 * 1..7 on text, binary, continuation, ping, pong and close after a valid message.
 * 4.1.1-4.1.5 (non-control opcodes 3-7: alone, with payload, and after a valid message followed
 * by a ping), 4.2.1-4.2.5 (control opcodes 11-15, the same way); every reserved opcode both alone
 * and after a valid message, whole and in chops.
 *
 * Expected each time: the valid message's echo first, then a Close 1002, no pong for a ping that
 * follows the bad frame, and TCP closed by the server.
 */
import t from 'tap'
import { continuation, encodeFrame, expectClose, expectText, Op, ping, text } from '../helpers/raw-client.js'
import { echoServer } from './helpers.js'

const server = await echoServer()
t.teardown(() => server.app.close())

const hello = 'Hello, world!'

t.test('3.1: text with RSV=1 fails with 1002', async (t) => {
  // §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines meanings for non-zero
  // values. If a nonzero value is received and none of the negotiated extensions defines the
  // meaning of such a nonzero value, the receiving endpoint MUST _Fail the WebSocket Connection_."
  const c = await server.connect()
  await c.send(text(hello, { rsv: 1 }))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('3.2: text, text with RSV=2, ping: echo, then 1002, no pong', async (t) => {
  const c = await server.connect()
  await c.send(text(hello), text(hello, { rsv: 2 }), ping())
  t.same(await c.rest(), [expectText(hello), expectClose(1002)])
})

t.test('3.3: the same frame by frame: text (echo awaited), text with RSV=3, ping', async (t) => {
  const c = await server.connect()
  await c.send(text(hello))
  t.same(await c.next(), [expectText(hello)])
  await c.send(text(hello, { rsv: 3 }))
  await c.send(ping())
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('3.4: text, text with RSV=4, ping, all in 1-byte chops', async (t) => {
  // RSV=4 is RSV1, which only permessage-deflate defines; it is not negotiated here
  const c = await server.connect()
  await c.sendChopped(Buffer.concat([text(hello), text(hello, { rsv: 4 }), ping()]), 1)
  t.same(await c.rest(), [expectText(hello), expectClose(1002)])
})

t.test('3.5: binary with RSV=5 fails with 1002', async (t) => {
  const c = await server.connect()
  await c.send(encodeFrame({ opcode: Op.Binary, payload: Buffer.from([0xff, 0xfe]), rsv: 5 }))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('3.6: ping with RSV=6 fails with 1002, no pong', async (t) => {
  const c = await server.connect()
  await c.send(ping(hello, { rsv: 6 }))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('3.7: close with RSV=7 fails with 1002 (not an echo of 1000)', async (t) => {
  const c = await server.connect()
  await c.send(encodeFrame({ opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]), rsv: 7 }))
  t.same(await c.rest(), [expectClose(1002)])
})

t.test('every RSV value on every frame type, after a valid message', async (t) => {
  const kinds: Array<[string, (rsv: number) => Buffer]> = [
    ['text', (rsv) => text('x', { rsv })],
    ['binary', (rsv) => encodeFrame({ opcode: Op.Binary, payload: 'x', rsv })],
    ['continuation', (rsv) => Buffer.concat([text('a', { fin: false }), continuation('b', { rsv })])],
    ['ping', (rsv) => ping('x', { rsv })],
    ['pong', (rsv) => encodeFrame({ opcode: Op.Pong, payload: 'x', rsv })],
    ['close', (rsv) => encodeFrame({ opcode: Op.Close, payload: Buffer.from([0x03, 0xe8]), rsv })]
  ]
  for (const [name, bad] of kinds) {
    for (let rsv = 1; rsv <= 7; rsv++) {
      const c = await server.connect()
      await c.send(text(hello), bad(rsv), ping('after'))
      t.same(await c.rest(), [expectText(hello), expectClose(1002)], `${name} with RSV=${rsv}`)
    }
  }
})

// §5.2: "%x3-7 are reserved for further non-control frames", "%xB-F are reserved for further
// control frames"; §5.2 / §10.7: an unknown opcode MUST _Fail the WebSocket Connection_
const nonControl = [3, 4, 5, 6, 7]
const control = [0xb, 0xc, 0xd, 0xe, 0xf]

for (const [group, opcodes] of [['4.1', nonControl], ['4.2', control]] as const) {
  t.test(`${group}.1: reserved opcode ${opcodes[0]} without payload fails with 1002`, async (t) => {
    const c = await server.connect()
    await c.send(encodeFrame({ opcode: opcodes[0] }))
    t.same(await c.rest(), [expectClose(1002)])
  })
  t.test(`${group}.2: reserved opcode ${opcodes[1]} with payload fails with 1002`, async (t) => {
    const c = await server.connect()
    await c.send(encodeFrame({ opcode: opcodes[1], payload: 'reserved opcode payload' }))
    t.same(await c.rest(), [expectClose(1002)])
  })
  t.test(`${group}.3: text, reserved opcode ${opcodes[2]}, ping: echo then 1002, no pong`, async (t) => {
    const c = await server.connect()
    await c.send(text(hello), encodeFrame({ opcode: opcodes[2] }), ping())
    t.same(await c.rest(), [expectText(hello), expectClose(1002)])
  })
  for (const i of [3, 4]) {
    t.test(`${group}.${i + 1}: text, reserved opcode ${opcodes[i]} with payload, ping: echo then 1002, no pong`, async (t) => {
      const c = await server.connect()
      await c.send(text(hello), encodeFrame({ opcode: opcodes[i], payload: 'reserved opcode payload' }), ping())
      t.same(await c.rest(), [expectText(hello), expectClose(1002)])
    })
  }
}

t.test('every reserved opcode, alone and after a message, whole and in 1-byte chops', async (t) => {
  for (const opcode of [...nonControl, ...control]) {
    for (const chopped of [false, true]) {
      const c = await server.connect()
      const bytes = Buffer.concat([text(hello), encodeFrame({ opcode, payload: 'p' }), ping()])
      if (chopped) await c.sendChopped(bytes, 1)
      else await c.send(bytes)
      t.same(await c.rest(), [expectText(hello), expectClose(1002)], `opcode ${opcode}${chopped ? ' in chops' : ''}`)
    }
    const c = await server.connect()
    await c.send(encodeFrame({ opcode }))
    t.same(await c.rest(), [expectClose(1002)], `opcode ${opcode} alone`)
  }
})
