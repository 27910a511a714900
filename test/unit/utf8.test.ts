// lib/protocol/utf8.ts: incremental UTF-8 validation, failing fast (RFC 6455 §8.1, Autobahn 6.x).
// The reference is the WHATWG decoder (TextDecoder, fatal), which is itself fail-fast when
// streaming: it throws at the first byte that cannot continue a valid sequence.
import t from 'tap'
import { isValidUtf8, UTF8_ACCEPT, UTF8_REJECT, validateUtf8 } from '../../lib/protocol/utf8.js'
import { prng, randInt, randomBytes } from './helpers.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')

/** Whole-buffer validity by the reference decoder. */
function refValid (b: Uint8Array): boolean {
  try { new TextDecoder('utf-8', { fatal: true }).decode(b); return true } catch { return false }
}

/** Index of the first byte that makes the prefix impossible, or -1. */
function refFirstBad (b: Uint8Array): number {
  for (let k = 1; k <= b.length; k++) {
    try { new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(0, k), { stream: true }) } catch { return k - 1 }
  }
  return -1
}

const VALID: Array<[string, Buffer]> = [
  ['empty', Buffer.alloc(0)],
  ['ascii', Buffer.from('Hello, world')],
  ['6.2.1 kosme', Buffer.from('κόσμε')],
  ['6.2 mixed', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!')],
  ['U+0000', hex('00')],
  ['U+007F', hex('7f')],
  ['U+0080', hex('c2 80')],
  ['U+07FF', hex('df bf')],
  ['U+0800', hex('e0 a0 80')],
  ['U+D7FF', hex('ed 9f bf')],
  ['U+E000', hex('ee 80 80')],
  ['U+FFFD', hex('ef bf bd')],
  ['U+FFFE (noncharacter is valid)', hex('ef bf be')],
  ['U+FFFF', hex('ef bf bf')],
  ['U+10000', hex('f0 90 80 80')],
  ['U+10FFFF', hex('f4 8f bf bf')],
  ['emoji run', Buffer.from('😀🙂🚀 ok 𝄞'.repeat(20))],
  ['long mixed (fast path)', Buffer.from('aé€😀'.repeat(500))]
]

const INVALID: Array<[string, Buffer]> = [
  ['5-byte lead F8', hex('f8 88 80 80 80')],
  ['6-byte lead FC', hex('fc 84 80 80 80 80')],
  ['> U+10FFFF (F4 90)', hex('f4 90 80 80')],
  ['F5 lead', hex('f5 80 80 80')],
  ['F7 BF BF BF', hex('f7 bf bf bf')],
  ['FE', hex('fe')],
  ['FF', hex('ff')],
  ['FE FE FF FF', hex('fe fe ff ff')],
  ['lone continuation 80', hex('80')],
  ['lone continuation BF', hex('bf')],
  ['continuations 80 BF 80 BF', hex('80 bf 80 bf')],
  ['lone C0 then space', hex('c0 20')],
  ['lone E0 then space', hex('e0 20')],
  ['lone F0 then space', hex('f0 20')],
  ['truncated C2', hex('c2')],
  ['truncated E0 A0', hex('e0 a0')],
  ['truncated F0 90 80', hex('f0 90 80')],
  ['truncated after text', Buffer.concat([Buffer.from('κόσμε'), hex('e2 82')])],
  ['overlong / C0 AF', hex('c0 af')],
  ['overlong / E0 80 AF', hex('e0 80 af')],
  ['overlong / F0 80 80 AF', hex('f0 80 80 af')],
  ['overlong max C1 BF', hex('c1 bf')],
  ['overlong max E0 9F BF', hex('e0 9f bf')],
  ['overlong max F0 8F BF BF', hex('f0 8f bf bf')],
  ['surrogate ED A0 80', hex('ed a0 80')],
  ['surrogate ED AD BF', hex('ed ad bf')],
  ['surrogate ED AF BF', hex('ed af bf')],
  ['surrogate ED B0 80', hex('ed b0 80')],
  ['surrogate ED BF BF', hex('ed bf bf')],
  ['surrogate pair ED A0 80 ED B0 80', hex('ed a0 80 ed b0 80')],
  ['6.4.1 kosme + F4 90 80 80 + edited', Buffer.concat([Buffer.from('κόσμε'), hex('f4 90 80 80'), Buffer.from('edited')])],
  ['6.4.3 kosme + ED A0 80 + edited', Buffer.concat([Buffer.from('κόσμε'), hex('ed a0 80'), Buffer.from('edited')])],
  ['invalid after a long valid run', Buffer.concat([Buffer.from('aé€😀'.repeat(100)), hex('c0 80'), Buffer.from('tail')])],
  ['extra continuation after 4-byte', hex('f0 90 80 80 80')]
]

/** Feed pieces; returns [final state, index of the piece that first returned REJECT or -1]. */
function feed (pieces: Uint8Array[]): { state: number, rejectedAt: number } {
  let state = UTF8_ACCEPT
  for (let i = 0; i < pieces.length; i++) {
    state = validateUtf8(pieces[i], 0, pieces[i].length, state)
    if (state === UTF8_REJECT) return { state, rejectedAt: i }
  }
  return { state, rejectedAt: -1 }
}

t.test('reference sanity: the valid vectors are valid, the invalid ones are not', async (t) => {
  for (const [name, b] of VALID) t.ok(refValid(b), name)
  for (const [name, b] of INVALID) t.notOk(refValid(b), name)
})

function checkVector (name: string, b: Buffer): string[] {
  const problems: string[] = []
  const valid = refValid(b)
  const firstBad = refFirstBad(b)
  if (isValidUtf8(b) !== valid) problems.push(`${name}: isValidUtf8`)
  // whole
  const whole = feed([b])
  if ((whole.state === UTF8_ACCEPT) !== valid) problems.push(`${name}: whole gives state ${whole.state}`)
  if ((whole.state === UTF8_REJECT) !== (firstBad >= 0)) problems.push(`${name}: whole REJECT vs firstBad ${firstBad}`)
  // byte by byte: REJECT exactly when the first impossible byte is fed, not before, not after
  const bytes: Uint8Array[] = []
  for (let i = 0; i < b.length; i++) bytes.push(b.subarray(i, i + 1))
  const bb = feed(bytes)
  if (bb.rejectedAt !== firstBad) problems.push(`${name}: byte by byte rejected at ${bb.rejectedAt}, first bad byte ${firstBad}`)
  if (firstBad < 0 && (bb.state === UTF8_ACCEPT) !== valid) problems.push(`${name}: byte by byte final state ${bb.state}`)
  // every split point, also with the data at a non-zero start inside a larger buffer
  for (let s = 0; s <= b.length; s++) {
    const r = feed([b.subarray(0, s), b.subarray(s)])
    const expectAt = firstBad < 0 ? -1 : firstBad < s ? 0 : 1
    if (r.rejectedAt !== expectAt) problems.push(`${name}: split at ${s} rejected in piece ${r.rejectedAt}, expected ${expectAt}`)
    if (firstBad < 0 && (r.state === UTF8_ACCEPT) !== valid) problems.push(`${name}: split at ${s} final state ${r.state}`)
    const framed = Buffer.concat([Buffer.from([0xff, 0xfe]), b, Buffer.from([0xff])])
    let st = validateUtf8(framed, 2, 2 + s, UTF8_ACCEPT)
    if (st !== UTF8_REJECT) st = validateUtf8(framed, 2 + s, 2 + b.length, st)
    if ((st === UTF8_REJECT) !== (firstBad >= 0) || (firstBad < 0 && (st === UTF8_ACCEPT) !== valid)) {
      problems.push(`${name}: ranges inside a larger buffer, split at ${s}, state ${st}`)
    }
  }
  return problems
}

t.test('valid vectors: whole, byte by byte and at every split point', async (t) => {
  for (const [name, b] of VALID) t.same(checkVector(name, b), [], name)
})

t.test('invalid vectors: whole, byte by byte and at every split point; fail fast', async (t) => {
  for (const [name, b] of INVALID) t.same(checkVector(name, b), [], name)
})

t.test('fail fast: REJECT as soon as the impossible byte arrives, before the sequence would end', async (t) => {
  // Autobahn 6.4.x: the bytes after the bad one never arrive, the state is already REJECT
  t.equal(validateUtf8(hex('ce ba e1 bd b9 cf 83 ce bc ce b5 f4 90'), 0, 13, UTF8_ACCEPT), UTF8_REJECT, 'F4 90')
  t.equal(validateUtf8(hex('ed a0'), 0, 2, UTF8_ACCEPT), UTF8_REJECT, 'ED A0')
  t.equal(validateUtf8(hex('e0 80'), 0, 2, UTF8_ACCEPT), UTF8_REJECT, 'E0 80')
  t.equal(validateUtf8(hex('f0 80'), 0, 2, UTF8_ACCEPT), UTF8_REJECT, 'F0 80')
  t.equal(validateUtf8(hex('c0'), 0, 1, UTF8_ACCEPT), UTF8_REJECT, 'C0')
  t.equal(validateUtf8(hex('f8'), 0, 1, UTF8_ACCEPT), UTF8_REJECT, 'F8')
  // a prefix of a valid sequence is not rejected, and is not ACCEPT either
  for (const p of ['c2', 'e0 a0', 'ed 9f', 'f0 90', 'f0 90 80', 'f4 8f bf']) {
    const st = validateUtf8(hex(p), 0, hex(p).length, UTF8_ACCEPT)
    t.ok(st !== UTF8_ACCEPT && st !== UTF8_REJECT, `${p} is an open sequence`)
  }
  // REJECT is sticky
  t.equal(validateUtf8(Buffer.from('abc'), 0, 3, UTF8_REJECT), UTF8_REJECT)
})

t.test('every 1-, 2- and 3-byte sequence agrees with the reference (byte by byte)', async (t) => {
  let mismatches = 0
  const one = Buffer.alloc(1)
  for (let a = 0; a < 256; a++) {
    one[0] = a
    if ((validateUtf8(one, 0, 1, UTF8_ACCEPT) === UTF8_REJECT) !== (refFirstBad(one) >= 0)) mismatches++
    const sa = validateUtf8(one, 0, 1, UTF8_ACCEPT)
    for (let b = 0; b < 256; b++) {
      const two = Buffer.from([a, b])
      const whole = validateUtf8(two, 0, 2, UTF8_ACCEPT)
      const stepped = sa === UTF8_REJECT ? sa : validateUtf8(two, 1, 2, sa)
      const bad = refFirstBad(two) >= 0
      const valid = refValid(two)
      if ((whole === UTF8_REJECT) !== bad || (stepped === UTF8_REJECT) !== bad) mismatches++
      if (!bad && ((whole === UTF8_ACCEPT) !== valid || (stepped === UTF8_ACCEPT) !== valid)) mismatches++
    }
  }
  // 3-byte sequences with a multi-byte lead (the interesting ones), plus a trailing byte class
  const probes = [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff]
  for (let a = 0xc0; a < 256; a++) {
    for (let b = 0x80; b < 0xc0; b++) {
      for (const c of probes) {
        const three = Buffer.from([a, b, c])
        const whole = validateUtf8(three, 0, 3, UTF8_ACCEPT)
        const bad = refFirstBad(three) >= 0
        if ((whole === UTF8_REJECT) !== bad || (!bad && (whole === UTF8_ACCEPT) !== refValid(three))) mismatches++
      }
    }
  }
  t.equal(mismatches, 0)
})

t.test('random vectors: incremental equals whole-buffer validity at random splits', async (t) => {
  const rand = prng(99)
  const alphabet = ['a', 'é', '€', '😀', 'κ', '\u07ff', '\u0800', '\uffff', '\u{10ffff}']
  let mismatches = 0
  for (let i = 0; i < 3000; i++) {
    let b: Buffer
    if (i % 3 === 0) {
      b = randomBytes(rand, randInt(rand, 12))
    } else {
      let s = ''
      const n = randInt(rand, 40)
      for (let j = 0; j < n; j++) s += alphabet[randInt(rand, alphabet.length)]
      b = Buffer.from(s)
      if (i % 3 === 2 && b.length > 0) b[randInt(rand, b.length)] = randInt(rand, 256) // mutate a byte
    }
    const valid = refValid(b)
    const firstBad = refFirstBad(b)
    const pieces: Buffer[] = []
    let pos = 0
    while (pos < b.length) {
      const n = 1 + randInt(rand, 6)
      pieces.push(b.subarray(pos, pos + n))
      pos += n
    }
    const r = feed(pieces)
    if ((r.state === UTF8_REJECT) !== (firstBad >= 0)) mismatches++
    if (firstBad < 0 && (r.state === UTF8_ACCEPT) !== valid) mismatches++
    if (r.rejectedAt >= 0) {
      // it rejected in the piece that holds the first impossible byte
      let start = 0
      for (let k = 0; k < r.rejectedAt; k++) start += pieces[k].length
      if (firstBad < start || firstBad >= start + pieces[r.rejectedAt].length) mismatches++
    }
  }
  t.equal(mismatches, 0)
})

t.test('short pieces (the ASCII scan): an ASCII prefix of every length, then a bad, a good or an open sequence', async (t) => {
  const problems: string[] = []
  for (let n = 0; n <= 140; n++) {
    const ascii = Buffer.alloc(n, 0x61)
    const cases: Array<[string, Buffer, number | 'open']> = [
      ['ascii only', ascii, UTF8_ACCEPT],
      ['then FF', Buffer.concat([ascii, hex('ff')]), UTF8_REJECT],
      ['then a lone continuation byte', Buffer.concat([ascii, hex('80'), ascii]), UTF8_REJECT],
      ['then é', Buffer.concat([ascii, hex('c3a9'), ascii]), UTF8_ACCEPT],
      ['then an overlong NUL', Buffer.concat([ascii, hex('c080')]), UTF8_REJECT],
      ['then the first 2 bytes of a 4-byte sequence', Buffer.concat([ascii, hex('f09f')]), 'open']
    ]
    for (const [name, b, want] of cases) {
      // inside a larger buffer, so the range and not the whole buffer is checked
      const outer = Buffer.concat([hex('ff'), b, hex('ff')])
      const st = validateUtf8(outer, 1, 1 + b.length, UTF8_ACCEPT)
      const ok = want === 'open' ? st !== UTF8_ACCEPT && st !== UTF8_REJECT : st === want
      if (!ok) problems.push(`${n} ${name}: state ${st}`)
    }
    // a piece that continues an open sequence is not taken for ASCII
    if (validateUtf8(Buffer.concat([hex('9f9880'), ascii]), 0, 3 + n, validateUtf8(hex('f0'), 0, 1, UTF8_ACCEPT)) !== UTF8_ACCEPT) problems.push(`${n} continued`)
    if (validateUtf8(ascii, 0, n, validateUtf8(hex('c3'), 0, 1, UTF8_ACCEPT)) !== (n === 0 ? 1 : UTF8_REJECT)) problems.push(`${n} lead then ASCII`)
  }
  t.same(problems, [])
})
