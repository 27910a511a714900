// The parser with lent message memory (lentMessages: lib/connection/message-pool.ts): which
// messages come from the pool, that their bytes are right at every chunking of lent and owned
// reads (a lent read is overwritten after each push, as the shared read buffer is), and that a
// message that never completes gives its slab back.
import t from 'tap'
import { FrameParser, type ParserSink } from '../../lib/protocol/parser.js'
import type { ProtocolError } from '../../lib/protocol/errors.js'
import { lentSlabsInUse, messagePool, slabOf } from '../../lib/connection/message-pool.js'
import { frame, prng, randInt, randomBytes } from './helpers.js'

interface Got { data: Buffer, binary: boolean, lent: boolean }

function parser (): { p: FrameParser, got: Got[], failures: ProtocolError[] } {
  const got: Got[] = []
  const failures: ProtocolError[] = []
  const sink: ParserSink = {
    // copied at once: the test then releases the slab, as the connection does after its listeners
    onMessage (data, binary) {
      const slab = slabOf(data)
      got.push({ data: Buffer.from(data), binary, lent: slab !== undefined })
      if (slab !== undefined) slab.release()
    },
    onControl () {},
    onFail (error) { failures.push(error) }
  }
  const p = new FrameParser(sink, { role: 'server', maxPayload: 1 << 22, maxFragments: 64, allowRsv1: false, memory: messagePool })
  return { p, got, failures }
}

const rand = prng(6455)
const big = randomBytes(rand, 70_000)
const text = Buffer.from('é'.repeat(12_000))
const small = randomBytes(rand, 16 * 1024 - 1)
const fragmented = randomBytes(rand, 40_000)
const wire = Buffer.concat([
  frame({ opcode: 0x2, payload: big }),
  frame({ opcode: 0x1, payload: text }),
  frame({ opcode: 0x2, payload: small }),
  frame({ opcode: 0x2, fin: false, payload: fragmented.subarray(0, 20_000) }),
  frame({ opcode: 0x0, payload: fragmented.subarray(20_000) }),
  frame({ opcode: 0x2, payload: big.subarray(0, 16 * 1024) })
])
const expected = [
  { data: big, binary: true, lent: true },
  { data: text, binary: false, lent: false },
  { data: small, binary: true, lent: false },
  { data: fragmented, binary: true, lent: false },
  { data: big.subarray(0, 16 * 1024), binary: true, lent: true }
]

for (const borrowed of [true, false]) {
  t.test(`${borrowed ? 'lent' : 'owned'} reads: single-frame binary messages of 16 KiB or more come from the pool, at every chunking`, async (t) => {
    const before = lentSlabsInUse()
    const chunkings: number[][] = [[wire.length], [1000], [65_536], [16_384 + 7]]
    for (let i = 0; i < 20; i++) chunkings.push([1 + randInt(rand, 90_000)])
    for (const [size] of chunkings) {
      const { p, got, failures } = parser()
      for (let o = 0; o < wire.length; o += size) {
        const chunk = Buffer.from(wire.subarray(o, o + size))
        p.push(chunk, borrowed)
        // the shared read buffer is overwritten by the next read
        if (borrowed) chunk.fill(0xee)
      }
      t.same(failures, [], `chunks of ${size}: no failure`)
      t.equal(got.length, expected.length, `chunks of ${size}: every message`)
      const wrong = got.filter((g, i) => g.binary !== expected[i].binary || Buffer.compare(g.data, expected[i].data) !== 0)
      t.equal(wrong.length, 0, `chunks of ${size}: every message holds its bytes`)
      const lent = got.map((g) => g.lent)
      t.same(lent.filter((l, i) => l && !expected[i].lent), [], `chunks of ${size}: only large single-frame binary messages are lent`)
      // a lent read holding every frame whole: each lendable message is lent (owned reads: a
      // whole frame in one read is a view of it, no copy; a frame split across reads is lent only
      // when its first piece is a quarter of it at least: a trickling peer gets no large slab)
      if (borrowed && size === wire.length) t.same(lent, expected.map((e) => e.lent), 'one read: which messages are lent')
      if (!borrowed && size === 65_536) t.ok(lent[0], 'owned reads: a message joined from two reads is lent')
      t.equal(lentSlabsInUse(), before, `chunks of ${size}: every slab released`)
    }
  })
}

t.test('a lent message that never completes gives its slab back (stop, reset)', async (t) => {
  const before = lentSlabsInUse()
  const head = frame({ opcode: 0x2, payload: big }).subarray(0, 40_000)
  for (const end of ['stop', 'reset'] as const) {
    const { p, got } = parser()
    p.push(Buffer.from(head), true)
    t.equal(lentSlabsInUse(), before + 1, `${end}: the message being read holds a slab`)
    if (end === 'stop') p.stop()
    else p.reset(p as unknown as ParserSink, { role: 'server', maxPayload: 1 << 22, maxFragments: 64, allowRsv1: false })
    t.equal(got.length, 0, `${end}: nothing delivered`)
    t.equal(lentSlabsInUse(), before, `${end}: the slab is back`)
  }
})
