// lib/connection/deflate.ts: compressed payloads over 64 KiB are inflated as two writes (payload,
// then the RFC 7692 §7.2.2 trailer) instead of one copy with the trailer appended; both paths
// must give the same bytes, keep the window, and see a BFINAL block end the stream
import t from 'tap'
import zlib from 'node:zlib'
import { randomBytes } from 'node:crypto'
import { liveZlibStreams, PerMessageDeflate } from '../../lib/connection/deflate.js'
import type { DeflateParams } from '../../lib/protocol/permessage-deflate.js'

const params: DeflateParams = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }
const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH }

function inflate (pmd: PerMessageDeflate, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => pmd.decompress(data, (err, out) => err === null ? resolve(out) : reject(err)))
}
function deflate (pmd: PerMessageDeflate, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => pmd.compress(data, (err, out) => err === null ? resolve(out) : reject(err)))
}

t.test('a compressed payload over 64 KiB inflates, and the window carries on to the next message', async (t) => {
  const pmd = new PerMessageDeflate({ params, maxPayload: 1 << 20 })
  t.teardown(() => pmd.close())
  const big = randomBytes(200 * 1024) // incompressible: the compressed payload stays over 64 KiB
  // one sender stream (context takeover), two messages: the second only refers to the first
  const sender = zlib.createDeflateRaw({ windowBits: 15 })
  const chunks: Buffer[] = []
  sender.on('data', (c: Buffer) => chunks.push(c))
  const message = async (data: Buffer): Promise<Buffer> => {
    chunks.length = 0
    sender.write(data)
    await new Promise<void>((resolve) => sender.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()))
    const out = Buffer.concat(chunks)
    t.same([...out.subarray(-4)], [0, 0, 0xff, 0xff], 'sync flush marker')
    return out.subarray(0, -4)
  }
  const first = await message(big)
  t.ok(first.length > 64 * 1024, 'the large path is taken')
  t.ok((await inflate(pmd, first)).equals(big), 'large message inflated')
  const tail = big.subarray(-1000) // within the 32 KiB window
  const second = await message(tail)
  t.ok(second.length < 100, 'the second message is a back-reference')
  t.ok((await inflate(pmd, second)).equals(tail), 'window kept after the large write')
  sender.close()
})

t.test('a large message ending in a BFINAL block ends the stream; the next one starts afresh', async (t) => {
  const before = liveZlibStreams()
  const pmd = new PerMessageDeflate({ params, maxPayload: 1 << 20 })
  const big = randomBytes(100 * 1024)
  const final = zlib.deflateRawSync(big) // Z_FINISH: the last block has BFINAL set
  t.ok(final.length > 64 * 1024, 'the large path is taken')
  t.ok((await inflate(pmd, final)).equals(big), 'inflated up to the final block')
  const next = Buffer.from('after the final block')
  t.equal((await inflate(pmd, zlib.deflateRawSync(next, SYNC).subarray(0, -4))).toString(), next.toString())
  // and a small one with BFINAL again, then one more
  t.equal((await inflate(pmd, zlib.deflateRawSync(next))).toString(), next.toString())
  t.equal((await inflate(pmd, zlib.deflateRawSync(next, SYNC).subarray(0, -4))).toString(), next.toString())
  pmd.close()
  const deadline = Date.now() + 5000
  while (liveZlibStreams() !== before && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
  t.equal(liveZlibStreams(), before, 'every stream released')
})

t.test('deflate of a large payload is one message that inflates back', async (t) => {
  const pmd = new PerMessageDeflate({ params, maxPayload: 1 << 20 })
  t.teardown(() => pmd.close())
  // the messages share the window (context takeover): one inflate stream reads them in order
  const receiver = zlib.createInflateRaw({ windowBits: 15 })
  t.teardown(() => receiver.close())
  const got: Buffer[] = []
  receiver.on('data', (c: Buffer) => got.push(c))
  for (const data of [randomBytes(150 * 1024), Buffer.alloc(300 * 1024, 'abc'), Buffer.alloc(0)]) {
    const out = await deflate(pmd, data)
    got.length = 0
    receiver.write(Buffer.concat([out, Buffer.from([0, 0, 0xff, 0xff])]))
    await new Promise<void>((resolve) => receiver.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()))
    t.ok(Buffer.concat(got).equals(data), `${data.length} bytes round trip`)
  }
})
