// Hostile frame streams (issue 5): endless empty or 1-byte continuation frames, 1-byte TCP
// writes. Memory pinned by an incomplete message is capped by fragment count and by bytes.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { WebSocketProtocol } from '../../lib/index.js'
import { assertServes, clientFrame, closeCodeOf, rawWebSocket, server } from './helpers.js'

function echo (app: FastifyInstance): void {
  app.ws('/echo', (socket) => {
    socket.on('message', (data: Buffer, binary: boolean) => socket.send(binary ? data : data.toString()))
  })
  app.ws('/small', { maxPayload: 4096, maxFragments: 64 }, (socket) => {
    socket.on('message', (data: Buffer) => socket.send(data))
  })
}

t.test('endless 0-byte continuation frames: 1009 at maxFragments (default 16384)', async (t) => {
  const { app, port, log } = await server({}, echo)
  t.teardown(() => app.close())
  const client = await rawWebSocket(port, '/echo')
  const empty = clientFrame(0x0, Buffer.alloc(0), { fin: false })
  client.write(clientFrame(0x2, Buffer.alloc(0), { fin: false }))
  // 20 000 more than the server accepts, in 40 writes
  for (let i = 0; i < 40; i++) client.write(Buffer.concat(Array.from({ length: 500 }, () => empty)))
  const [frame] = await client.waitFrames(1)
  t.equal(frame.opcode, 0x8)
  t.equal(closeCodeOf(frame), 1009, 'Message Too Big: too many fragments')
  await client.waitClosed()
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
  t.ok(log.records.some((r) => r.msg === 'websocket closed' && r.error === 'WS_ERR_TOO_MANY_FRAGMENTS' && r.level < 50), 'logged below error level with its code')
})

t.test('1-byte continuation frames: 1009 once the bytes pass maxPayload, or the count passes maxFragments', async (t) => {
  const { app, port, log } = await server({}, echo)
  t.teardown(() => app.close())
  // count: 64 fragments allowed on /small
  const counted = await rawWebSocket(port, '/small')
  counted.write(clientFrame(0x2, Buffer.from([1]), { fin: false }))
  for (let i = 0; i < 100; i++) counted.write(clientFrame(0x0, Buffer.from([1]), { fin: false }))
  t.equal(closeCodeOf((await counted.waitFrames(1))[0]), 1009)
  await counted.waitClosed()
  // bytes: 4096 allowed on /small, sent as 1000-byte fragments (under the count)
  const sized = await rawWebSocket(port, '/small')
  sized.write(clientFrame(0x2, Buffer.alloc(1000), { fin: false }))
  for (let i = 0; i < 10; i++) sized.write(clientFrame(0x0, Buffer.alloc(1000), { fin: false }))
  t.equal(closeCodeOf((await sized.waitFrames(1))[0]), 1009)
  await sized.waitClosed()
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('memory pinned by an incomplete message: never past maxPayload, linear in what arrived', async (t) => {
  const maxPayload = 64 * 1024
  const core = new WebSocketProtocol({ role: 'server', maxPayload, maxFragments: 1_000_000 })
  core.receive(clientFrame(0x2, Buffer.alloc(0), { fin: false }))
  for (let i = 0; i < 10_000; i++) core.receive(clientFrame(0x0, Buffer.alloc(0), { fin: false }))
  t.equal(core.bufferedInput, 0, '10 000 empty fragments pin no payload memory')
  let received = 0
  let worst = 0
  let peak = 0
  for (let i = 0; i < maxPayload / 16; i++) {
    core.receive(clientFrame(0x0, Buffer.alloc(16, 7), { fin: false }))
    received += 16
    worst = Math.max(worst, core.bufferedInput - 4 * received)
    peak = Math.max(peak, core.bufferedInput)
  }
  t.ok(peak <= maxPayload, `never past maxPayload (peak ${peak})`)
  t.ok(worst <= 1024, `capacity stays within 4x the bytes received + 1 KiB (worst excess ${worst})`)
  core.receive(clientFrame(0x0, Buffer.alloc(1), { fin: true }))
  const events = core.takeEvents()
  t.same(events.map((e) => e.type), ['fail'])
  t.equal(events[0].type === 'fail' && events[0].error.code, 'WS_ERR_MESSAGE_TOO_BIG')
  t.equal(core.bufferedInput, 0, 'released after the failure')
})

t.test('a frame announcing maxPayload and trickling its bytes: memory follows what arrived, not what was announced', async (t) => {
  // 10 bytes sent must not make the server hold the 1 MiB announced; checked for a single-frame
  // message and a first fragment, with chunks given to the core and only lent (the shared read
  // buffer), and the message still arrives whole and exact at full size
  const maxPayload = 1024 * 1024
  const payload = Buffer.alloc(maxPayload)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff
  for (const fin of [true, false]) {
    for (const lent of [false, true]) {
      const core = new WebSocketProtocol({ role: 'server', maxPayload, maxFragments: 16 })
      const bytes = clientFrame(0x2, payload, { fin })
      const feed = (chunk: Buffer): void => {
        if (lent) {
          const copy = Buffer.from(chunk)
          core.receive(copy, true)
          copy.fill(0xa5)
        } else core.receive(Buffer.from(chunk))
      }
      const head = 14 // 2 + 8 length bytes + 4 mask bytes
      feed(bytes.subarray(0, head + 10))
      const held = core.bufferedInput
      t.ok(held <= 1024 + 40, `${fin ? 'single frame' : 'first fragment'}, ${lent ? 'lent' : 'owned'}: ${held} bytes held for 10 received`)
      let peakRatio = 0
      for (let at = head + 10; at < bytes.length; at += 1000) {
        feed(bytes.subarray(at, Math.min(bytes.length, at + 1000)))
        const received = Math.min(bytes.length, at + 1000) - head
        if (received < maxPayload) peakRatio = Math.max(peakRatio, core.bufferedInput / received)
      }
      t.ok(peakRatio <= 4.2, `never more than ~4x what arrived (peak ${peakRatio.toFixed(2)}x)`)
      if (!fin) feed(clientFrame(0x0, Buffer.alloc(0), { fin: true }))
      const events = core.takeEvents()
      t.equal(events.length, 1)
      t.ok(events[0].type === 'message' && events[0].data.equals(payload), 'the message arrives whole and exact')
    }
  }
})

t.test('a peer streaming a large frame (a full 128 KiB read) gets the frame allocated once, at most 8x what arrived', async (t) => {
  const maxPayload = 1024 * 1024
  const payload = Buffer.alloc(maxPayload, 3)
  const bytes = clientFrame(0x2, payload)
  const core = new WebSocketProtocol({ role: 'server', maxPayload, maxFragments: 16 })
  const first = Buffer.from(bytes.subarray(0, 14 + 128 * 1024))
  core.receive(first, true)
  first.fill(0xa5)
  t.equal(core.bufferedInput, maxPayload, 'the announced size at once: no reallocation later')
  t.ok(core.bufferedInput <= 8 * 128 * 1024, 'at most 8x what arrived')
  const rest = Buffer.from(bytes.subarray(first.length))
  core.receive(rest, true)
  const events = core.takeEvents()
  t.ok(events.length === 1 && events[0].type === 'message' && events[0].data.equals(payload), 'the message arrives whole and exact')
})

t.test('many small fragments cost linear time, not quadratic', async (t) => {
  // 16 384 fragments of 64 bytes (1 MiB): with a reallocation per fragment this copied ~8 GiB
  const core = new WebSocketProtocol({ role: 'server', maxPayload: 1024 * 1024, maxFragments: 16384 })
  const parts = [clientFrame(0x2, Buffer.alloc(64, 1), { fin: false })]
  for (let i = 1; i < 16383; i++) parts.push(clientFrame(0x0, Buffer.alloc(64, 1), { fin: false }))
  parts.push(clientFrame(0x0, Buffer.alloc(64, 1), { fin: true }))
  let peak = 0
  for (const p of parts) { core.receive(p); peak = Math.max(peak, core.bufferedInput) }
  const events = core.takeEvents()
  t.equal(events.length, 1)
  t.equal(events[0].type === 'message' && events[0].data.length, 1024 * 1024)
  t.ok(peak <= 1024 * 1024, 'the accumulator never grew past maxPayload')
})

t.test('1-byte TCP writes: every frame type reassembled exactly', async (t) => {
  const { app, port, log } = await server({}, echo)
  t.teardown(() => app.close())
  const client = await rawWebSocket(port, '/echo')
  const text = 'ünïcødé ✓ '.repeat(30)
  const bytes = Buffer.concat([
    clientFrame(0x1, text.slice(0, 100), { fin: false }),
    clientFrame(0x9, 'ping!'),
    clientFrame(0x0, text.slice(100), { fin: true }),
    clientFrame(0x2, Buffer.alloc(300, 9)),
    clientFrame(0x8, Buffer.from([0x03, 0xe8]))
  ])
  for (const byte of bytes) {
    await new Promise<void>((resolve) => client.socket.write(Buffer.from([byte]), () => resolve()))
  }
  await client.waitClosed()
  const frames = client.frames()
  t.same(frames.map((f) => f.opcode), [0xa, 0x1, 0x2, 0x8])
  t.equal(frames[0].payload.toString(), 'ping!')
  t.equal(frames[1].payload.toString(), text)
  t.ok(frames[2].payload.equals(Buffer.alloc(300, 9)))
  t.equal(closeCodeOf(frames[3]), 1000)
  t.same(log.errors(), [])
})
