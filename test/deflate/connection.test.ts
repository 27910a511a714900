// permessage-deflate over real sockets with a raw-byte client: RSV1 rules, RFC 7692 fixtures,
// threshold, zip bomb, UTF-8 after inflation, order with control frames, release on close.
import t from 'tap'
import zlib from 'node:zlib'
import { liveZlibStreams } from '../../lib/connection/deflate.js'
import { deadline, frame, pmdCompress, pmdInflate, rawConnect, startServer, waitFor } from './helpers.js'

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0
const CLOSE = 0x8
const PING = 0x9
const PONG = 0xa
const OFFER = 'permessage-deflate; client_max_window_bits'

function closePayload (code: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(code)
  return b
}

t.test('the 101 carries the negotiated extension, and only when the plugin enables it', async (t) => {
  const on = await startServer({ perMessageDeflate: true })
  const off = await startServer()
  t.teardown(async () => { await on.app.close(); await off.app.close() })
  const a = await rawConnect(on.port, '/echo', OFFER)
  t.equal(a.status, 101)
  t.equal(a.headers['sec-websocket-extensions'], 'permessage-deflate')
  t.equal(on.sockets[0].extensions, 'permessage-deflate')
  t.equal(liveZlibStreams(), 0, 'negotiated but idle: zlib state is created on first use only')
  const b = await rawConnect(off.port, '/echo', OFFER)
  t.equal(b.status, 101)
  t.notOk('sec-websocket-extensions' in b.headers, 'off: no extension answered')
  const c = await rawConnect(on.port, '/echo', 'permessage-deflate; bogus')
  t.equal(c.status, 101, 'an invalid offer is declined, not refused')
  t.notOk('sec-websocket-extensions' in c.headers)
  for (const client of [a, b, c]) client.socket.destroy()
})

t.test('RSV1 rules: 1002 without negotiation, on control and on continuation frames', async (t) => {
  const srv = await startServer({ perMessageDeflate: true })
  t.teardown(() => srv.app.close())
  const cases: Array<{ name: string, offer: string | undefined, bytes: Buffer[] }> = [
    { name: 'RSV1 without the extension negotiated', offer: undefined, bytes: [frame(TEXT, pmdCompress('Hello'), { rsv1: true })] },
    { name: 'RSV1 on a Ping', offer: OFFER, bytes: [frame(PING, 'x', { rsv1: true })] },
    { name: 'RSV1 on a Close', offer: OFFER, bytes: [frame(CLOSE, closePayload(1000), { rsv1: true })] },
    {
      name: 'RSV1 on a continuation frame',
      offer: OFFER,
      bytes: [frame(TEXT, pmdCompress('Hello').subarray(0, 3), { fin: false, rsv1: true }), frame(CONT, pmdCompress('Hello').subarray(3), { rsv1: true })]
    }
  ]
  for (const c of cases) {
    const client = await rawConnect(srv.port, '/echo', c.offer)
    for (const b of c.bytes) client.send(b)
    t.equal(await client.closeCode(), 1002, c.name)
    client.socket.destroy()
  }
})

t.test('RFC 7692 §7.2.3 frames: compressed, fragmented, shared window, uncompressed block', async (t) => {
  const srv = await startServer({ perMessageDeflate: true })
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/record', OFFER)
  // §7.2.3.1 "0xc1 0x07 0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00"
  client.send(frame(TEXT, Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), { rsv1: true }))
  // §7.2.3.1 fragmented: "0x41 0x03 0xf2 0x48 0xcd" "0x80 0x04 0xc9 0xc9 0x07 0x00"
  client.send(frame(TEXT, Buffer.from([0xf2, 0x48, 0xcd]), { fin: false, rsv1: true }))
  client.send(frame(CONT, Buffer.from([0xc9, 0xc9, 0x07, 0x00])))
  // §7.2.3.2 the same message again, referring to the window: "0xc1 0x05 0xf2 0x00 0x11 0x00 0x00"
  client.send(frame(TEXT, Buffer.from([0xf2, 0x00, 0x11, 0x00, 0x00]), { rsv1: true }))
  // §7.2.3.3 a stored block
  client.send(frame(TEXT, Buffer.from([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]), { rsv1: true }))
  // an uncompressed message in between (RSV1 clear)
  client.send(frame(TEXT, 'plain'))
  await client.frame(4)
  t.same(srv.records[0].map((e) => e.data), ['Hello', 'Hello', 'Hello', 'Hello', 'plain'])
  // echoes are below the 1024-byte threshold: RSV1 clear
  t.same(client.frames.slice(0, 5).map((f) => [f.rsv, f.payload.toString()]), [[0, 'Hello'], [0, 'Hello'], [0, 'Hello'], [0, 'Hello'], [0, 'plain']])
  client.socket.destroy()
})

t.test('outbound: messages at or over the threshold are compressed, RSV1 on the only frame', async (t) => {
  const srv = await startServer({ perMessageDeflate: { threshold: 100 } })
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/echo', OFFER)
  const small = 'a'.repeat(99)
  const big = 'b'.repeat(100)
  const bin = Buffer.alloc(5000, 0x41)
  client.send(frame(TEXT, small))
  client.send(frame(TEXT, big))
  client.send(frame(BINARY, bin))
  client.send(frame(TEXT, small))
  await client.frame(3)
  const [f0, f1, f2, f3] = client.frames
  t.same([f0.rsv, f0.opcode, f0.payload.toString()], [0, TEXT, small], 'below the threshold: plain')
  t.same([f1.rsv, f1.opcode, f1.fin], [4, TEXT, true], 'at the threshold: RSV1')
  t.equal(pmdInflate(f1.payload).toString(), big)
  t.ok(f1.payload.length < 100)
  t.same([f2.rsv, f2.opcode], [4, BINARY])
  // context takeover: inflate with one stream across messages
  const inflater = zlib.createInflateRaw()
  const stream = (p: Buffer) => new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = []
    inflater.on('data', (c: Buffer) => chunks.push(c))
    inflater.write(Buffer.concat([p, Buffer.from([0, 0, 0xff, 0xff])]))
    inflater.flush(() => { inflater.removeAllListeners('data'); resolve(Buffer.concat(chunks)) })
  })
  t.equal((await stream(f1.payload)).toString(), big)
  t.ok((await stream(f2.payload)).equals(bin))
  inflater.close()
  t.same([f3.rsv, f3.payload.toString()], [0, small], 'a small message after a compressed one keeps its place')
  client.socket.destroy()
})

t.test('zip bomb: a small frame inflating past maxPayload closes 1009', async (t) => {
  const maxPayload = 1024 * 1024
  const srv = await startServer({ perMessageDeflate: true, maxPayload })
  t.teardown(() => srv.app.close())
  const bomb = pmdCompress(Buffer.alloc(256 * 1024 * 1024), { level: 9 })
  t.ok(bomb.length < maxPayload, `${bomb.length} compressed bytes for 256 MiB`)
  const before = process.memoryUsage().arrayBuffers
  const client = await rawConnect(srv.port, '/record', OFFER)
  client.send(frame(BINARY, bomb, { rsv1: true }))
  t.equal(await client.closeCode(), 1009)
  const grew = process.memoryUsage().arrayBuffers - before
  t.ok(grew < 64 * 1024 * 1024, `buffers grew by ${(grew / 1048576).toFixed(1)} MiB, far below the 256 MiB bomb`)
  await waitFor(() => srv.sockets[0].readyState === 3, 'server close')
  t.equal(srv.sockets[0].failure?.code, 'WS_ERR_INFLATED_MESSAGE_TOO_BIG')
  t.same(srv.records[0].filter((e) => e.type === 'message'), [], 'nothing delivered')
  client.socket.destroy()
})

t.test('text is checked as UTF-8 after inflation (1007); bad DEFLATE data is 1007', async (t) => {
  const srv = await startServer({ perMessageDeflate: true })
  t.teardown(() => srv.app.close())
  const a = await rawConnect(srv.port, '/echo', OFFER)
  // valid UTF-8 split across fragments of the compressed stream is fine
  const text = 'héllo wörld ✓ '.repeat(20)
  const z = pmdCompress(text)
  a.send(frame(TEXT, z.subarray(0, 5), { fin: false, rsv1: true }))
  a.send(frame(CONT, z.subarray(5, 9), { fin: false }))
  a.send(frame(CONT, z.subarray(9)))
  const echoed = await a.frame(0)
  t.equal((echoed.rsv === 4 ? pmdInflate(echoed.payload) : echoed.payload).toString(), text)
  a.send(frame(TEXT, pmdCompress(Buffer.from([0x68, 0xc3, 0x28])), { rsv1: true }))
  t.equal(await a.closeCode(), 1007, 'invalid UTF-8 inside the compressed text')
  a.socket.destroy()
  const b = await rawConnect(srv.port, '/echo', OFFER)
  b.send(frame(BINARY, Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0xfb]), { rsv1: true }))
  t.equal(await b.closeCode(), 1007, 'not DEFLATE data')
  b.socket.destroy()
})

/** 900 KiB that compress slowly enough at level 1 for later frames to arrive during the inflate */
const SLOW = Buffer.alloc(900 * 1024)
for (let i = 0; i < SLOW.length; i++) SLOW[i] = (i * 31 + (i >> 9)) & 0xff
/** a slow compressed message, a ping, a plain message, a compressed one, a pong */
function behindAnInflate (): Buffer[] {
  return [
    frame(BINARY, pmdCompress(SLOW, { level: 1 }), { rsv1: true }),
    frame(PING, 'p1'),
    frame(TEXT, 'plain'),
    frame(TEXT, pmdCompress('second'), { rsv1: true }),
    frame(PONG, 'u1')
  ]
}
/** what the /record route saw, one string per event */
function seen (events: Array<{ type: string, data?: string, binary?: boolean, code?: number }>): string[] {
  return events.map((e) => e.type === 'message' ? `message:${e.binary === true ? (e.data as string).length / 2 : e.data}` : e.type === 'close' ? `close:${e.code}` : `${e.type}:${e.data}`)
}

t.test('order: pings, pongs and close are neither overtaken by nor lost behind an inflate', async (t) => {
  const srv = await startServer({ perMessageDeflate: { threshold: 1 << 30 } })
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/record', OFFER)
  // one write: the batch, then a Close
  client.send(Buffer.concat([...behindAnInflate(), frame(CLOSE, closePayload(1000))]))
  await client.until(() => client.frames.some((f) => f.opcode === CLOSE), 'the close echo')
  await waitFor(() => srv.records[0].some((e) => e.type === 'close'), 'server close event')
  t.same(seen(srv.records[0]), [`message:${SLOW.length}`, 'ping:p1', 'message:plain', 'message:second', 'pong:u1', 'close:1000'])
  // the core answered p1 at once; its Close echo is the last frame (the application's echoes
  // came after the peer's Close, when RFC 6455 §5.5.1 allows no more data frames)
  const kinds = client.frames.map((f) => f.opcode)
  t.same(kinds.filter((k) => k === PONG).length, 1, 'pong answered')
  t.equal(kinds[kinds.length - 1], CLOSE, 'the Close frame comes last')
  t.equal(srv.sockets[0].failure, null)
})

t.test('answers still in zlib go before the Pong and the Close echo (one read: messages, a Ping, a Close)', async (t) => {
  // every answer is compressed (threshold 0) and the first takes zlib a while: the Ping and the
  // Close that arrived behind the messages are answered only after the answers are written
  // (RFC 6455 §5.5.1: after its Close frame an endpoint sends no data frame, so an answer
  // written after the echo would be lost)
  const srv = await startServer({ perMessageDeflate: { threshold: 0 } })
  t.teardown(() => srv.app.close())
  for (let round = 0; round < 3; round++) {
    const client = await rawConnect(srv.port, '/record', OFFER)
    client.send(Buffer.concat([
      frame(BINARY, pmdCompress(SLOW, { level: 1 }), { rsv1: true }),
      frame(TEXT, pmdCompress('second'), { rsv1: true }),
      frame(PING, 'p1'),
      frame(CLOSE, closePayload(1000))
    ]))
    await client.until(() => client.ended, 'the server closes TCP')
    const got = client.frames.map((f) => f.opcode === BINARY || f.opcode === TEXT ? `${f.opcode === BINARY ? 'binary' : 'text'}:${pmdInflate(f.payload).length}` : f.opcode === PONG ? `pong:${f.payload.toString()}` : `close:${f.payload.readUInt16BE(0)}`)
    t.same(got, [`binary:${SLOW.length}`, 'text:6', 'pong:p1', 'close:1000'], `round ${round}: both answers, then the Pong, then the Close echo`)
  }
})

t.test('a Close in a later read while an answer is still in zlib: the answer goes first', async (t) => {
  let received!: () => void
  const srv = await startServer({ perMessageDeflate: { threshold: 0, level: 9 } }, (app) => app.ws('/answer', (socket) => {
    socket.on('message', () => {
      // compressed at level 9: zlib works on them for a while
      for (let i = 0; i < 3; i++) socket.send(SLOW)
      received()
    })
  }))
  t.teardown(() => srv.app.close())
  for (let round = 0; round < 3; round++) {
    // server_no_context_takeover: each answer inflates on its own here
    const client = await rawConnect(srv.port, '/answer', 'permessage-deflate; server_no_context_takeover')
    const got = new Promise<void>((resolve) => { received = resolve })
    client.send(frame(TEXT, 'go'))
    await deadline(got, 'the message reached the handler')
    // the answer is in the compression outbox now; the Close arrives in a read of its own
    client.send(frame(CLOSE, closePayload(1000)))
    await client.until(() => client.ended, 'the server closes TCP')
    const kinds = client.frames.map((f) => f.opcode)
    t.same(kinds, [BINARY, BINARY, BINARY, CLOSE], `round ${round}: the answers, then the Close echo`)
    t.ok(client.frames.slice(0, 3).every((f) => pmdInflate(f.payload).equals(SLOW)), 'the answers whole')
  }
})

t.test('a FIN right behind a compressed message: what waited behind the inflate is still delivered, in order', async (t) => {
  const srv = await startServer({ perMessageDeflate: { threshold: 1 << 30 } })
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/record', OFFER)
  // the end of TCP reaches the server while the first message is still being inflated: the
  // events behind it (and the end itself) wait for it (RFC 7692 §6: messages are delivered in
  // order; RFC 6455 §7.1.5: no Close frame, so the close code is 1006)
  client.socket.end(Buffer.concat(behindAnInflate()))
  await waitFor(() => srv.records[0].some((e) => e.type === 'close'), 'server close event')
  t.same(seen(srv.records[0]), [`message:${SLOW.length}`, 'ping:p1', 'message:plain', 'message:second', 'pong:u1', 'close:1006'])
  t.equal(srv.sockets[0].failure, null, 'an abrupt end is not a protocol failure')

  // nothing behind the message but the FIN: reading is not paused, so the end arrives during
  // the inflate and is held until the message is delivered
  const lone = await rawConnect(srv.port, '/record', OFFER)
  lone.socket.end(behindAnInflate()[0])
  await waitFor(() => srv.records[1]?.some((e) => e.type === 'close') === true, 'second close event')
  t.same(seen(srv.records[1]), [`message:${SLOW.length}`, 'close:1006'])
  await waitFor(() => liveZlibStreams() === 0, 'zlib streams released')
})

t.test('close() after a compressed send: the message goes first, then the Close frame', async (t) => {
  const results: Array<string> = []
  let serverClosed!: Promise<void>
  const srv = await startServer({ perMessageDeflate: { threshold: 0 } }, (app) => app.ws('/say-bye', (socket) => {
    serverClosed = new Promise((resolve) => socket.on('close', () => resolve()))
    socket.send('x'.repeat(200_000), (err) => results.push(err == null ? 'sent' : 'error'))
    socket.send('tail', (err) => results.push(err == null ? 'sent' : 'error'))
    socket.close(4001, 'bye')
    t.equal(socket.readyState, 2, 'closing at once')
    t.equal(socket.send('late'), false, 'no send after close()')
  }))
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/say-bye', OFFER)
  const code = await client.closeCode()
  t.equal(code, 4001)
  const data = client.frames.filter((f) => f.opcode === TEXT)
  t.same(data.map((f) => pmdInflate(f.payload).length), [200_000, 4])
  t.equal(client.frames.map((f) => f.opcode).indexOf(CLOSE), 2)
  client.send(frame(CLOSE, closePayload(4001)))
  await client.until(() => client.ended, 'server closes TCP')
  await serverClosed
  t.same(results, ['sent', 'sent'], 'callbacks called in order')
})

t.test('zlib state is released when the peer vanishes mid-message', async (t) => {
  const srv = await startServer({ perMessageDeflate: { threshold: 0 } })
  t.teardown(() => srv.app.close())
  await waitFor(() => liveZlibStreams() === 0, 'no zlib stream open before')
  const clients = []
  for (let i = 0; i < 5; i++) {
    const c = await rawConnect(srv.port, '/echo', OFFER)
    c.send(frame(TEXT, pmdCompress('first message ' + i), { rsv1: true }))
    await c.frame(0)
    // then half a compressed message, and gone
    const z = pmdCompress('x'.repeat(10_000) + i)
    c.send(frame(TEXT, z.subarray(0, 10), { fin: false, rsv1: true }))
    clients.push(c)
  }
  t.equal(liveZlibStreams(), 10, 'an inflater and a deflater per connection')
  for (const c of clients) c.socket.destroy()
  await waitFor(() => srv.sockets.every((s) => s.readyState === 3), 'server sockets closed')
  await waitFor(() => liveZlibStreams() === 0, 'all zlib streams released')
  t.equal(liveZlibStreams(), 0)
})
