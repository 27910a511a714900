// lib/protocol/frame.ts: the header codec (RFC 6455 §5.2) and Close bodies (§5.5.1).
import t from 'tap'
import { decodeHeader, encodeHeader, headerSize, decodeClosePayload, encodeClosePayload } from '../../lib/protocol/frame.js'
import { ProtocolError } from '../../lib/protocol/errors.js'
import { isValidCloseCode } from '../../lib/protocol/constants.js'
import { frame, prng, randInt, closeBody } from './helpers.js'

const KEY = Uint8Array.from([1, 2, 3, 4])

/** Encode then decode one header; returns the problems found (none expected). */
function roundTrip (h: { fin: boolean, rsv: number, opcode: number, payloadLength: number, mask?: Uint8Array }): string[] {
  const problems: string[] = []
  const masked = h.mask !== undefined
  const size = headerSize(h.payloadLength, masked)
  const buf = Buffer.alloc(size + 3, 0xee)
  const end = encodeHeader(buf, 3, h)
  if (end !== 3 + size) problems.push(`encode ended at ${end}`)
  // every prefix shorter than the header asks for more bytes
  for (let n = 0; n < size; n++) {
    if (decodeHeader(buf, 3, 3 + n) !== null) problems.push(`prefix of ${n} bytes decoded`)
  }
  const d = decodeHeader(buf, 3, end)
  const want = { fin: h.fin, rsv: h.rsv, opcode: h.opcode, masked, payloadLength: h.payloadLength, headerLength: size }
  if (JSON.stringify(d) !== JSON.stringify(want)) problems.push(`decoded ${JSON.stringify(d)}`)
  if (masked && !buf.subarray(end - 4, end).equals(h.mask!)) problems.push('masking key not written last')
  return problems
}

t.test('header round trips at the boundary lengths', async (t) => {
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1]) {
    for (const mask of [undefined, KEY]) {
      t.same(roundTrip({ fin: true, rsv: 0, opcode: 2, payloadLength: len, mask }), [], `length ${len} masked=${mask !== undefined}`)
    }
  }
})

t.test('header sizes follow the minimal encoding (§5.2)', async (t) => {
  t.equal(headerSize(125, false), 2)
  t.equal(headerSize(126, false), 4)
  t.equal(headerSize(65535, false), 4)
  t.equal(headerSize(65536, false), 10)
  t.equal(headerSize(0, true), 6)
  t.equal(headerSize(65536, true), 14)
  const buf = Buffer.alloc(14)
  encodeHeader(buf, 0, { fin: true, rsv: 0, opcode: 1, payloadLength: 126 })
  t.same([...buf.subarray(0, 4)], [0x81, 126, 0, 126])
  encodeHeader(buf, 0, { fin: false, rsv: 4, opcode: 0, payloadLength: 2 ** 32, mask: KEY })
  t.same([...buf.subarray(0, 14)], [0x40, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4])
})

t.test('header round trips at random lengths, flags and opcodes', async (t) => {
  const rand = prng(7)
  let checked = 0
  for (let i = 0; i < 2000; i++) {
    const kind = randInt(rand, 3)
    const len = kind === 0 ? randInt(rand, 126) : kind === 1 ? randInt(rand, 65536) : randInt(rand, 2 ** 53)
    const mask = rand() < 0.5 ? Uint8Array.from([randInt(rand, 256), randInt(rand, 256), randInt(rand, 256), randInt(rand, 256)]) : undefined
    const h = { fin: rand() < 0.5, rsv: randInt(rand, 8), opcode: randInt(rand, 16), payloadLength: len, mask }
    const size = headerSize(len, mask !== undefined)
    const buf = Buffer.alloc(size)
    encodeHeader(buf, 0, h)
    const d = decodeHeader(buf, 0, size)
    if (d === null || d.fin !== h.fin || d.rsv !== h.rsv || d.opcode !== h.opcode || d.payloadLength !== len ||
      d.masked !== (mask !== undefined) || d.headerLength !== size) {
      t.fail(`round trip ${JSON.stringify({ ...h, mask: mask === undefined ? null : [...mask] })} -> ${JSON.stringify(d)}`)
    }
    // and the decoder agrees with the independent builder of the test helpers
    if (len < 70000) {
      const built = frame({ fin: h.fin, rsv: h.rsv, opcode: h.opcode, payload: Buffer.alloc(len), mask: mask ?? false })
      const e = decodeHeader(built, 0, built.length)
      if (e?.payloadLength !== len || e.headerLength !== size) t.fail(`decode of built frame at ${len}`)
    }
    checked++
  }
  t.equal(checked, 2000)
})

t.test('non-minimal length encodings still decode (the MUST binds senders)', async (t) => {
  const f16 = frame({ opcode: 2, payload: 'abc', lengthBytes: 2, mask: false })
  t.match(decodeHeader(f16, 0, f16.length), { payloadLength: 3, headerLength: 4 })
  const f64 = frame({ opcode: 2, payload: 'abc', lengthBytes: 8 })
  t.match(decodeHeader(f64, 0, f64.length), { payloadLength: 3, headerLength: 14, masked: true })
})

t.test('64-bit length with the most significant bit set is a ProtocolError 1002 (§5.2)', async (t) => {
  for (const raw of [0x8000000000000000n, 0xffffffffffffffffn, 0x8000000000000001n]) {
    for (const mask of [false as const, KEY]) {
      const f = frame({ opcode: 2, lengthBytes: 8, rawLength: raw, mask })
      t.throws(() => decodeHeader(f, 0, f.length), { name: 'ProtocolError', code: 'WS_ERR_LENGTH_MSB_SET', closeCode: 1002 })
    }
  }
  // the largest length with the top bit clear decodes (it is for the limits to refuse)
  const max = frame({ opcode: 2, lengthBytes: 8, rawLength: 0x7fffffffffffffffn, mask: false })
  const d = decodeHeader(max, 0, max.length)
  t.ok(d !== null && d.payloadLength > 2 ** 62)
})

t.test('close payload decode: valid codes', async (t) => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
  for (const code of valid) {
    t.same(decodeClosePayload(closeBody(code)), { code, reason: '' }, `code ${code}`)
    t.ok(isValidCloseCode(code))
  }
  t.same(decodeClosePayload(closeBody(1000, 'bye ✓')), { code: 1000, reason: 'bye ✓' })
  t.same(decodeClosePayload(Buffer.alloc(0)), { code: 1005, reason: '' }, 'empty body reads as 1005')
  // the whole 3000-4999 range
  let ok = 0
  for (let code = 3000; code <= 4999; code++) if (decodeClosePayload(closeBody(code)).code === code) ok++
  t.equal(ok, 2000)
})

t.test('close payload decode: invalid codes are 1002', async (t) => {
  const invalid = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
  for (const code of invalid) {
    t.throws(() => decodeClosePayload(closeBody(code)),
      { name: 'ProtocolError', code: 'WS_ERR_INVALID_CLOSE_CODE', closeCode: 1002 }, `code ${code}`)
    t.notOk(isValidCloseCode(code))
  }
  // every 16-bit code: valid exactly in the documented ranges
  let mismatches = 0
  for (let code = 0; code < 65536; code++) {
    const expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
    let got: boolean
    try { decodeClosePayload(closeBody(code)); got = true } catch (err) { got = !(err instanceof ProtocolError) }
    if (got !== expected) mismatches++
  }
  t.equal(mismatches, 0)
})

t.test('close payload decode: 1-byte body is 1002, invalid UTF-8 reason is 1007', async (t) => {
  t.throws(() => decodeClosePayload(Buffer.from([0x03])), { code: 'WS_ERR_INVALID_CLOSE_PAYLOAD', closeCode: 1002 })
  for (const bad of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf4, 0x90, 0x80, 0x80]]) {
    t.throws(() => decodeClosePayload(closeBody(1000, Uint8Array.from(bad))),
      { code: 'WS_ERR_INVALID_CLOSE_REASON', closeCode: 1007 }, `reason ${Buffer.from(bad).toString('hex')}`)
  }
  // the code is checked before the reason
  t.throws(() => decodeClosePayload(closeBody(1004, Uint8Array.from([0xff]))), { code: 'WS_ERR_INVALID_CLOSE_CODE' })
  // a reason that is a view into a larger buffer decodes only its own bytes
  const big = Buffer.concat([Buffer.from('xx'), closeBody(1001, 'ok'), Buffer.from('yy')])
  t.same(decodeClosePayload(big.subarray(2, 6)), { code: 1001, reason: 'ok' })
})

t.test('close payload encode', async (t) => {
  t.equal(encodeClosePayload(undefined, '').length, 0)
  t.same([...encodeClosePayload(1000, '')], [0x03, 0xe8])
  t.same(decodeClosePayload(encodeClosePayload(4321, 'reason ✓')), { code: 4321, reason: 'reason ✓' })
  t.same(decodeClosePayload(encodeClosePayload(1001, Buffer.from('buf'))), { code: 1001, reason: 'buf' })
})
