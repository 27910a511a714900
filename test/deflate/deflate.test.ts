// lib/connection/deflate.ts: per-connection inflate/deflate, order, limits, release
import t from 'tap'
import zlib from 'node:zlib'
import { liveZlibStreams, PerMessageDeflate, setZlibConcurrency, zlibJobs } from '../../lib/connection/deflate.js'
import { ProtocolError } from '../../lib/protocol/errors.js'
import { deflate, deflateParams, inflate } from './helpers.js'

// RFC 7692 §7.2.3 examples (payloads of the frames shown there)
t.test('RFC 7692 §7.2.3 examples inflate to "Hello"', async (t) => {
  const pmd = new PerMessageDeflate({ params: deflateParams(), maxPayload: 1024 })
  t.teardown(() => pmd.close())
  // §7.2.3.1 "A Message Compressed Using 1 Compressed DEFLATE Block"
  t.equal((await inflate(pmd, Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))).toString(), 'Hello')
  // §7.2.3.2 "Sharing LZ77 Sliding Window": the same message again refers to the first one
  t.equal((await inflate(pmd, Buffer.from([0xf2, 0x00, 0x11, 0x00, 0x00]))).toString(), 'Hello')
  // §7.2.3.3 "DEFLATE Block with No Compression"
  t.equal((await inflate(pmd, Buffer.from([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]))).toString(), 'Hello')
  // §7.2.3.5 "Two DEFLATE Blocks in 1 Message"
  t.equal((await inflate(pmd, Buffer.from([0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]))).toString(), 'Hello')
  // §7.2.3.4 "Using a DEFLATE Block with BFINAL Set to 1": ends the zlib stream; the next
  // message starts a fresh one
  t.equal((await inflate(pmd, Buffer.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]))).toString(), 'Hello')
  t.equal((await inflate(pmd, Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]))).toString(), 'Hello')
})

t.test('compress gives the RFC 7692 §7.2.3.1 / §7.2.3.2 bytes for "Hello" twice', async (t) => {
  const pmd = new PerMessageDeflate({ params: deflateParams(), maxPayload: 1024 })
  t.teardown(() => pmd.close())
  const first = await deflate(pmd, Buffer.from('Hello'))
  t.same([...first], [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
  const second = await deflate(pmd, Buffer.from('Hello'))
  t.same([...second], [0xf2, 0x00, 0x11, 0x00, 0x00], 'context takeover: the window is shared')
})

t.test('server_no_context_takeover resets the deflater after each message', async (t) => {
  const pmd = new PerMessageDeflate({ params: deflateParams({ serverNoContextTakeover: true }), maxPayload: 1024 })
  t.teardown(() => pmd.close())
  const a = await deflate(pmd, Buffer.from('Hello'))
  const b = await deflate(pmd, Buffer.from('Hello'))
  t.same([...b], [...a], 'the second message does not refer to the first')
  // and a fresh peer inflater per message reads each one alone
  t.equal(zlib.inflateRawSync(Buffer.concat([b, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString(), 'Hello')
})

t.test('round trips of many sizes, each window size, order kept across async jobs', async (t) => {
  for (const bits of [9, 12, 15]) {
    const sender = new PerMessageDeflate({ params: deflateParams({ serverMaxWindowBits: bits }), maxPayload: 1 << 20 })
    const receiver = new PerMessageDeflate({ params: deflateParams({ clientMaxWindowBits: bits }), maxPayload: 1 << 20 })
    const sizes = [0, 1, 16, 125, 126, 1000, 4096, 65535, 65536, 200_000]
    const inputs = sizes.map((n, i) => Buffer.from(Array.from({ length: n }, (_, k) => (k * 7 + i) % 61 + 32)))
    // fire all compressions at once: the callbacks come back in call order
    const compressed = await Promise.all(inputs.map((b) => deflate(sender, b)))
    const order: number[] = []
    const outputs = await Promise.all(compressed.map((c, i) => inflate(receiver, c).then((out) => { order.push(i); return out })))
    t.same(order, sizes.map((_, i) => i), `order kept (${bits} bits)`)
    for (let i = 0; i < sizes.length; i++) t.ok(outputs[i].equals(inputs[i]), `${sizes[i]} bytes round trip (${bits} bits)`)
    sender.close()
    receiver.close()
  }
})

t.test('zip bomb: inflation stops at maxPayload with 1009, the zlib output stays bounded', async (t) => {
  const maxPayload = 64 * 1024
  const bomb = zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 })
  t.ok(bomb.length < 128 * 1024, `a ${bomb.length}-byte payload inflating to 64 MiB`)
  const pmd = new PerMessageDeflate({ params: deflateParams(), maxPayload })
  await waitFor(() => liveZlibStreams() === 0, 'earlier tests released their streams')
  const before = liveZlibStreams()
  const err = await inflate(pmd, bomb.subarray(0, bomb.length - 4)).then(() => null, (e: unknown) => e)
  t.ok(err instanceof ProtocolError)
  t.equal((err as ProtocolError).closeCode, 1009)
  t.equal((err as ProtocolError).code, 'WS_ERR_INFLATED_MESSAGE_TOO_BIG')
  const produced = pmd.lastInflateOutput
  t.ok(produced > maxPayload && produced <= maxPayload + 16 * 1024, `zlib produced ${produced} bytes (limit ${maxPayload} + one 16 KiB chunk)`)
  await waitFor(() => liveZlibStreams() === before, 'the inflater is released')
  pmd.close()
  // exactly at the limit is fine
  const exact = new PerMessageDeflate({ params: deflateParams(), maxPayload })
  const out = await inflate(exact, zlib.deflateRawSync(Buffer.alloc(maxPayload, 1), { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4))
  t.equal(out.length, maxPayload)
  exact.close()
})

t.test('invalid compressed data fails with 1007', async (t) => {
  const pmd = new PerMessageDeflate({ params: deflateParams(), maxPayload: 1024 })
  t.teardown(() => pmd.close())
  const err = await inflate(pmd, Buffer.from([0xff, 0xff, 0xff, 0xff])).then(() => null, (e: unknown) => e)
  t.ok(err instanceof ProtocolError)
  t.equal((err as ProtocolError).closeCode, 1007)
  t.equal((err as ProtocolError).code, 'WS_ERR_INVALID_COMPRESSED_DATA')
})

t.test('close() releases zlib at once and fails queued jobs', async (t) => {
  await waitFor(() => liveZlibStreams() === 0, 'earlier tests released their streams')
  const start = liveZlibStreams()
  const pmd = new PerMessageDeflate({ params: deflateParams(), maxPayload: 1 << 20 })
  await deflate(pmd, Buffer.from('x'.repeat(2000)))
  await inflate(pmd, zlib.deflateRawSync(Buffer.from('y'.repeat(2000)), { finishFlush: zlib.constants.Z_SYNC_FLUSH }))
  t.equal(liveZlibStreams(), start + 2, 'both streams open after use')
  const big = Buffer.alloc(1 << 20, 7)
  const pending = [deflate(pmd, big), deflate(pmd, big), inflate(pmd, zlib.deflateRawSync(big))]
  pmd.close()
  const results = await Promise.allSettled(pending)
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'rejected'])
  await waitFor(() => liveZlibStreams() === start, 'zlib streams released')
  t.same(zlibJobs(), { running: 0, waiting: 0 }, 'no concurrency slot leaked')
  const late = await deflate(pmd, big).then(() => 'ok', () => 'rejected')
  t.equal(late, 'rejected', 'a closed context refuses new work')
})

t.test('a process-wide limit on zlib jobs running at once', async (t) => {
  setZlibConcurrency(2)
  t.teardown(() => setZlibConcurrency(10))
  const contexts = Array.from({ length: 6 }, () => new PerMessageDeflate({ params: deflateParams(), maxPayload: 1 << 20 }))
  let maxRunning = 0
  const jobs = contexts.map((c) => deflate(c, Buffer.alloc(256 * 1024, 3)))
  const watch = zlibJobs()
  maxRunning = Math.max(maxRunning, watch.running)
  t.equal(watch.running, 2, 'two run')
  t.equal(watch.waiting, 4, 'four wait for a slot')
  const outs = await Promise.all(jobs)
  t.equal(outs.length, 6)
  t.same(zlibJobs(), { running: 0, waiting: 0 })
  for (const c of contexts) c.close()
})

async function waitFor (cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

t.test('without context takeover an idle connection holds no zlib stream', async (t) => {
  await waitFor(() => liveZlibStreams() === 0, 'a clean start')
  const lean = new PerMessageDeflate({ params: deflateParams({ serverNoContextTakeover: true, clientNoContextTakeover: true }), maxPayload: 1 << 20 })
  const text = Buffer.from('abc'.repeat(1000))
  for (let i = 0; i < 3; i++) {
    const z = await deflate(lean, text)
    t.ok(pmdInflateSync(z).equals(text), 'each message stands alone')
    t.ok((await inflate(lean, z)).equals(text))
    await waitFor(() => liveZlibStreams() === 0, 'released after the message')
  }
  // several queued messages reuse one stream (reset between them), then release it
  const outs = await Promise.all([deflate(lean, text), deflate(lean, text), deflate(lean, text)])
  t.ok(outs.every((o) => o.equals(outs[0])), 'identical output: each started from an empty window')
  await waitFor(() => liveZlibStreams() === 0, 'released once idle')
  lean.close()
  const keep = new PerMessageDeflate({ params: deflateParams(), maxPayload: 1 << 20 })
  await deflate(keep, text)
  const peer = new PerMessageDeflate({ params: deflateParams(), maxPayload: 1 << 20 })
  await inflate(keep, await deflate(peer, text))
  peer.close()
  t.ok(liveZlibStreams() >= 2, 'with context takeover the streams stay')
  keep.close()
})

function pmdInflateSync (data: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
}
