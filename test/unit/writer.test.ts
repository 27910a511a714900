// lib/protocol/writer.ts: a text frame's payload is the UTF-8 of the string (RFC 6455 §5.6), in a
// frame whose header says its length (§5.2), masked in the client role (§5.3).
import t from 'tap'
import { decodeHeader } from '../../lib/protocol/frame.js'
import { FrameWriter } from '../../lib/protocol/writer.js'

/** The payload of the one frame in `bytes`, unmasked. */
function payloadOf (bytes: Buffer): { fin: boolean, opcode: number, payload: Buffer } {
  const h = decodeHeader(bytes, 0, bytes.length)
  if (h === null) throw new Error('no whole header')
  const payload = Buffer.from(bytes.subarray(h.headerLength, h.headerLength + h.payloadLength))
  if (h.masked) {
    const key = bytes.subarray(h.headerLength - 4, h.headerLength)
    for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]
  }
  if (h.headerLength + h.payloadLength !== bytes.length) throw new Error('bytes after the frame')
  return { fin: h.fin, opcode: h.opcode, payload }
}

t.test('textFrame: ASCII, non-ASCII at every position and lone surrogates, at every short length, both roles', async (t) => {
  const problems: string[] = []
  const inserts = ['', 'é', '€', '😀', '\ud800', '\udc00x', '\u0080', '\u007f']
  for (const mask of [false, true]) {
    for (let n = 0; n <= 45; n++) {
      for (const insert of inserts) {
        for (const at of insert === '' ? [0] : [0, n >> 1, n]) {
          const text = 'a'.repeat(at) + insert + 'b'.repeat(n - at)
          const writer = new FrameWriter({ mask })
          writer.textFrame(0x1, text, { fin: true, rsv: 0 })
          const { fin, opcode, payload } = payloadOf(Buffer.concat(writer.take()))
          if (!fin || opcode !== 1 || !payload.equals(Buffer.from(text, 'utf8'))) {
            problems.push(`mask ${String(mask)} n ${n} insert ${JSON.stringify(insert)} at ${at}`)
          }
        }
      }
    }
  }
  t.same(problems, [])
})

t.test('textFrame: consecutive short frames of one writer leave as one buffer, in order', async (t) => {
  const writer = new FrameWriter({ mask: false })
  const texts = ['one', 'twé', '', 'x'.repeat(41), '😀😀']
  for (const text of texts) writer.textFrame(0x1, text, { fin: true, rsv: 0 })
  const out = writer.take()
  t.equal(out.length, 1)
  const bytes = out[0]
  const seen: string[] = []
  let o = 0
  while (o < bytes.length) {
    const h = decodeHeader(bytes, o, bytes.length)!
    seen.push(bytes.toString('utf8', o + h.headerLength, o + h.headerLength + h.payloadLength))
    o += h.headerLength + h.payloadLength
  }
  t.same(seen, texts)
})
