// Empty messages under permessage-deflate (RFC 7692 §7.2.1, §7.2.3.6), both directions: the
// server compressing an empty message (first, after a non-empty one, text and binary, with and
// without context takeover) and the server receiving one (payload 0x00, and an empty payload).
import t from 'tap'
import zlib from 'node:zlib'
import { PerMessageDeflate } from '../../lib/connection/deflate.js'
import { ProtocolError } from '../../lib/protocol/errors.js'
import { deadline, deflate, deflateParams, frame, inflate, pmdCompress, rawConnect, startServer, waitFor } from './helpers.js'

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])

/**
 * The peer's side written with zlib directly (not lib/'s code): a raw inflater that keeps its
 * window across messages, as a client without client-side no_context_takeover does (§7.2.2).
 */
class PeerInflater {
  private stream: zlib.InflateRaw | null = null
  constructor (private readonly takeover: boolean) {}

  async inflate (payload: Buffer): Promise<Buffer> {
    if (this.stream === null || !this.takeover) {
      this.stream?.close()
      this.stream = zlib.createInflateRaw()
    }
    const stream = this.stream
    const chunks: Buffer[] = []
    const onData = (c: Buffer): void => { chunks.push(c) }
    stream.on('data', onData)
    try {
      await deadline(new Promise<void>((resolve, reject) => {
        stream.once('error', reject)
        stream.write(Buffer.concat([payload, TRAILER]))
        stream.flush(zlib.constants.Z_SYNC_FLUSH, () => { stream.off('error', reject); resolve() })
      }), 'the peer inflater')
    } finally {
      stream.off('data', onData)
    }
    return Buffer.concat(chunks)
  }

  close (): void {
    this.stream?.close()
  }
}

/** A peer deflater as `ws` writes one: write, then a sync flush, then the 4-octet tail removed. */
class PeerDeflater {
  private readonly stream = zlib.createDeflateRaw()
  constructor (private readonly takeover: boolean) {}

  async deflate (data: Buffer): Promise<Buffer> {
    const chunks: Buffer[] = []
    const onData = (c: Buffer): void => { chunks.push(c) }
    this.stream.on('data', onData)
    await deadline(new Promise<void>((resolve) => {
      this.stream.write(data)
      this.stream.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve())
    }), 'the peer deflater')
    this.stream.off('data', onData)
    // client_no_context_takeover: each message starts with an empty window (§7.2.1)
    if (!this.takeover) this.stream.reset()
    const out = Buffer.concat(chunks)
    return out.subarray(0, out.length - 4)
  }

  close (): void {
    this.stream.close()
  }
}

/** Messages that put an empty one first, after a non-empty one, and twice in a row. */
const SEQUENCE = ['', 'Hello', '', '', 'Hello', 'x'.repeat(3000), ''].map((s) => Buffer.from(s))

for (const takeover of [true, false]) {
  const name = takeover ? 'context takeover' : 'server_no_context_takeover'

  t.test(`compress: an empty message is the empty stored block 0x00, wherever it comes (${name})`, async (t) => {
    const pmd = new PerMessageDeflate({ params: deflateParams({ serverNoContextTakeover: !takeover }), maxPayload: 1 << 20 })
    const peer = new PeerInflater(takeover)
    t.teardown(() => { pmd.close(); peer.close() })
    for (const [i, message] of SEQUENCE.entries()) {
      const out = await deflate(pmd, message)
      if (message.length === 0) t.same([...out], [0x00], `message ${i} (empty): RFC 7692 §7.2.3.6 block`)
      t.ok(out.length > 0, `message ${i}: a compressed message is never empty`)
      t.ok((await peer.inflate(out)).equals(message), `message ${i} (${message.length} bytes) inflates back at the peer`)
    }
  })

  t.test(`decompress: 0x00 and a peer's empty messages are empty, the window carries on (${name})`, async (t) => {
    const pmd = new PerMessageDeflate({ params: deflateParams({ clientNoContextTakeover: !takeover }), maxPayload: 1 << 20 })
    const peer = new PeerDeflater(takeover)
    t.teardown(() => { pmd.close(); peer.close() })
    for (const [i, message] of SEQUENCE.entries()) {
      const payload = await peer.deflate(message)
      t.ok((await inflate(pmd, payload)).equals(message), `message ${i} (${message.length} bytes)`)
      // the §7.2.3.6 block on its own, between the peer's messages: an empty message that
      // leaves the window as it was
      t.equal((await inflate(pmd, Buffer.from([0x00]))).length, 0, `0x00 after message ${i}`)
    }
  })
}

t.test('decompress: an empty payload is invalid compressed data (1007), first or after a message', async (t) => {
  for (const before of [[], ['Hello']]) {
    const pmd = new PerMessageDeflate({ params: deflateParams(), maxPayload: 1024 })
    for (const m of before) t.equal((await inflate(pmd, pmdCompress(m))).toString(), m)
    const err = await inflate(pmd, Buffer.alloc(0)).then(() => null, (e: unknown) => e)
    t.ok(err instanceof ProtocolError, `after ${before.length} message(s): refused`)
    t.equal((err as ProtocolError).code, 'WS_ERR_INVALID_COMPRESSED_DATA')
    t.equal((err as ProtocolError).closeCode, 1007)
    pmd.close()
  }
})

// ---- over a socket ----

const OFFERS = [
  { name: 'context takeover', offer: 'permessage-deflate', takeover: true },
  { name: 'server_no_context_takeover', offer: 'permessage-deflate; server_no_context_takeover', takeover: false }
]

for (const { name, offer, takeover } of OFFERS) {
  t.test(`server sends empty text and binary messages as RSV1 frames carrying 0x00 (${name})`, async (t) => {
    const srv = await startServer({ perMessageDeflate: { threshold: 0 } })
    const peer = new PeerInflater(takeover)
    t.teardown(async () => { peer.close(); await srv.app.close() })
    const client = await rawConnect(srv.port, '/echo', offer)
    t.equal(client.status, 101)
    t.equal(client.headers['sec-websocket-extensions'], offer)
    // uncompressed from the client, echoed compressed by the server (threshold 0)
    const sent: Array<{ opcode: number, data: Buffer }> = [
      { opcode: TEXT, data: Buffer.alloc(0) },
      { opcode: TEXT, data: Buffer.from('Hello') },
      { opcode: TEXT, data: Buffer.alloc(0) },
      { opcode: BINARY, data: Buffer.alloc(0) },
      { opcode: BINARY, data: Buffer.from([1, 2, 3]) },
      { opcode: BINARY, data: Buffer.alloc(0) },
      { opcode: TEXT, data: Buffer.alloc(0) }
    ]
    for (const [i, m] of sent.entries()) {
      client.send(frame(m.opcode, m.data))
      const f = await client.frame(i)
      t.equal(f.opcode, m.opcode, `echo ${i}: opcode`)
      t.equal(f.rsv, 4, `echo ${i}: RSV1 set`)
      if (m.data.length === 0) t.same([...f.payload], [0x00], `echo ${i}: the empty stored block`)
      t.ok((await peer.inflate(f.payload)).equals(m.data), `echo ${i}: inflates to what was sent`)
    }
    client.socket.destroy()
  })
}

t.test('server receives compressed empty messages: 0x00, first and after others, text and binary, fragmented', async (t) => {
  const srv = await startServer({ perMessageDeflate: true })
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/record', 'permessage-deflate')
  const empty = Buffer.from([0x00])
  client.send(Buffer.concat([
    frame(TEXT, empty, { rsv1: true }),
    frame(TEXT, pmdCompress('Hello'), { rsv1: true }),
    frame(TEXT, empty, { rsv1: true }),
    frame(BINARY, empty, { rsv1: true }),
    frame(BINARY, pmdCompress(Buffer.from([7, 8])), { rsv1: true }),
    frame(BINARY, empty, { rsv1: true }),
    // fragmented: an empty first fragment (RSV1), the block in the continuation
    frame(TEXT, Buffer.alloc(0), { rsv1: true, fin: false }),
    frame(CONT, empty),
    frame(TEXT, pmdCompress('end'), { rsv1: true })
  ]))
  await client.frame(7) // the echo of the last one
  t.same(srv.records[0], [
    { type: 'message', data: '', binary: false },
    { type: 'message', data: 'Hello', binary: false },
    { type: 'message', data: '', binary: false },
    { type: 'message', data: '', binary: true },
    { type: 'message', data: '0708', binary: true },
    { type: 'message', data: '', binary: true },
    { type: 'message', data: '', binary: false },
    { type: 'message', data: 'end', binary: false }
  ])
  client.socket.destroy()
})

t.test('server receives a compressed message with no payload at all: 1007, first or after a message, whole or fragmented', async (t) => {
  const srv = await startServer({ perMessageDeflate: true })
  t.teardown(() => srv.app.close())
  const cases: Array<{ name: string, bytes: Buffer[], before: number }> = [
    { name: 'first message', bytes: [frame(TEXT, Buffer.alloc(0), { rsv1: true })], before: 0 },
    { name: 'binary, after a message', bytes: [frame(TEXT, pmdCompress('Hello'), { rsv1: true }), frame(BINARY, Buffer.alloc(0), { rsv1: true })], before: 1 },
    { name: 'two empty fragments', bytes: [frame(TEXT, Buffer.alloc(0), { rsv1: true, fin: false }), frame(CONT, Buffer.alloc(0))], before: 0 }
  ]
  for (const [i, c] of cases.entries()) {
    const client = await rawConnect(srv.port, '/record', 'permessage-deflate')
    for (const b of c.bytes) client.send(b)
    t.equal(await client.closeCode(), 1007, c.name)
    const rec = srv.records[i]
    await waitFor(() => rec.some((e) => e.type === 'close'), 'the server close event')
    t.equal(rec.filter((e) => e.type === 'message').length, c.before, `${c.name}: no empty message delivered`)
    client.socket.destroy()
  }
})
