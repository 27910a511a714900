/**
 * Autobahn server cases 6.* (UTF-8 handling), from RFC 6455 §5.6 / §8.1, RFC 3629 and the
 * published case descriptions (whose vectors follow Markus Kuhn's UTF-8 decoder stress test),
 * over real sockets with the raw client.
 *
 * Covered: 6.1.1-6.1.3 (empty text, 3 empty fragments, empty first/last fragments), 6.2.1-6.2.4
 * (valid text whole, in 2 fragments at a code point boundary, in 1-byte fragments ending inside
 * code points, κόσμε in 1-byte fragments), 6.3.1-6.3.2 (invalid text whole and in 1-byte
 * fragments), 6.4.1-6.4.4 (FAIL FAST: a valid first part, then the invalid part; the server
 * closes with 1007 before the rest is sent, in fragments and in chops of one frame), and the
 * vector groups 6.5-6.23 (valid sequences, all prefixes of κόσμε, first/last sequences of each
 * length, 5- and 6-byte forms, boundary conditions, unexpected continuation bytes, lonely start
 * bytes, missing continuation bytes, impossible bytes, overlong forms, surrogates, noncharacters,
 * specials). Every vector is sent as one frame (the Autobahn case) and, beyond Autobahn, in
 * 1-byte fragments and in 1-byte chops.
 *
 * Valid text is echoed exactly; invalid text gets Close 1007 and no echo; TCP is closed by the
 * server each time.
 */
import t, { type Test } from 'tap'
import { continuation, encodeFrame, expectClose, expectPong, expectText, Op, ping, text } from '../helpers/raw-client.js'
import { echoServer, serverReceived } from './helpers.js'

const server = await echoServer()
t.teardown(() => server.app.close())

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const kosme = hex('cebae1bdb9cf83cebcceb5') // κόσμε

/** One message in 1-byte fragments. */
function oneByteFragments (bytes: Buffer): Buffer[] {
  if (bytes.length === 0) return [text('')]
  const frames: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) {
    frames.push(encodeFrame({ opcode: i === 0 ? Op.Text : Op.Continuation, payload: bytes.subarray(i, i + 1), fin: i === bytes.length - 1 }))
  }
  return frames
}

// ---- 6.1, 6.2, 6.3 ----

t.test('6.1.1: an empty text message is echoed', async (t) => {
  const c = await server.connect()
  await c.send(text(''))
  t.same(await c.closeAndRest(), [expectText(''), expectClose(1000)])
})

t.test('6.1.2: a text message in 3 empty fragments is echoed as one empty message', async (t) => {
  const c = await server.connect()
  await c.send(text('', { fin: false }), continuation('', { fin: false }), continuation(''))
  t.same(await c.closeAndRest(), [expectText(''), expectClose(1000)])
})

t.test('6.1.3: 3 fragments, first and last empty', async (t) => {
  const c = await server.connect()
  await c.send(text('', { fin: false }), continuation('middle frame payload', { fin: false }), continuation(''))
  t.same(await c.closeAndRest(), [expectText('middle frame payload'), expectClose(1000)])
})

const hello = 'Hello-µ@ßöäüàá-UTF-8!!'

t.test('6.2.1: valid UTF-8 in one frame', async (t) => {
  const c = await server.connect()
  await c.send(text(hello))
  t.same(await c.closeAndRest(), [expectText(hello), expectClose(1000)])
})

t.test('6.2.2: valid UTF-8 in 2 fragments split at a code point boundary', async (t) => {
  const c = await server.connect()
  const bytes = Buffer.from(hello)
  const cut = Buffer.byteLength('Hello-µ@ßöä')
  await c.send(text(bytes.subarray(0, cut), { fin: false }), continuation(bytes.subarray(cut)))
  t.same(await c.closeAndRest(), [expectText(hello), expectClose(1000)])
})

t.test('6.2.3: valid UTF-8 in 1-byte fragments (frames end inside code points)', async (t) => {
  const c = await server.connect()
  await c.send(...oneByteFragments(Buffer.from(hello)))
  t.same(await c.closeAndRest(), [expectText(hello), expectClose(1000)])
})

t.test('6.2.4: κόσμε in 1-byte fragments', async (t) => {
  const c = await server.connect()
  await c.send(...oneByteFragments(kosme))
  t.same(await c.closeAndRest(), [expectText(kosme.toString()), expectClose(1000)])
})

const invalid = Buffer.concat([kosme, hex('eda080'), Buffer.from('edited')]) // a UTF-16 surrogate inside

t.test('6.3.1: invalid UTF-8 in one frame: 1007, no echo', async (t) => {
  // §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte stream
  // is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_."
  const c = await server.connect()
  await c.send(text(invalid))
  t.same(await c.rest(), [expectClose(1007)])
})

t.test('6.3.2: invalid UTF-8 in 1-byte fragments: 1007', async (t) => {
  const c = await server.connect()
  await c.send(...oneByteFragments(invalid))
  t.same(await c.rest(), [expectClose(1007)])
})

// ---- 6.4: fail fast ----
// PART1 is valid, PART2 makes the sequence invalid (F4 90 80 80 would be U+110000), PART3 is
// valid again. The server must fail on PART2, before PART3 is sent: the client holds PART3 and
// only waits for the Close.

const part1 = kosme
const part2 = hex('f4908080')
const part3 = Buffer.from('edited')
const whole = Buffer.concat([part1, part2, part3])

t.test('6.4.1: 3 fragments; 1007 after the 2nd, before the 3rd is sent', async (t) => {
  const c = await server.connect()
  await c.send(text(part1, { fin: false }))
  // the first fragment is accepted: the connection still answers a ping
  await c.send(ping('open?'))
  t.same(await c.next(), [expectPong('open?')], 'still open after the valid first fragment')
  await c.send(continuation(part2, { fin: false }))
  t.same(await c.rest(), [expectClose(1007)], 'failed while the client still holds the 3rd fragment')
})

t.test('6.4.2: 3 fragments cut at the invalid byte: [..F4], [90], [80 80 edited]', async (t) => {
  const c = await server.connect()
  await c.send(text(whole.subarray(0, 12), { fin: false }))
  await c.send(ping('open?'))
  t.same(await c.next(), [expectPong('open?')], 'a message ending in F4 so far is still a valid prefix')
  await c.send(continuation(whole.subarray(12, 13), { fin: false }))
  t.same(await c.rest(), [expectClose(1007)], 'failed on the single byte 0x90, the rest still held')
})

/** One text frame announcing the whole payload, sent as [head + bytes[0, a)] then bytes[a, b); bytes[b..] are held. */
async function chopsFailFast (t: Test, payload: Buffer, a: number, b: number): Promise<void> {
  const c = await server.connect()
  const side = server.last()
  const frame = text(payload)
  const head = frame.length - payload.length
  await c.send(frame.subarray(0, head + a))
  await serverReceived(side, head + a)
  t.equal(side.ws.readyState, 1, 'the server has read the valid first chop and is still open')
  t.same(c.pending(), [], 'and has sent nothing')
  t.notOk(c.ended)
  await c.send(frame.subarray(head + a, head + b))
  t.same(await c.rest(), [expectClose(1007)], `closed with 1007 while the client holds the last ${payload.length - b} bytes of the frame`)
  t.equal(side.bytesIn, head + b, 'the server never saw the held bytes')
}

t.test('6.4.3: one frame in 3 chops: PART1, PART2, PART3 (held)', async (t) => {
  await chopsFailFast(t, whole, part1.length, part1.length + part2.length)
})

t.test('6.4.4: one frame in 3 chops cut at the invalid byte: [..F4], [90], [80 80 edited] (held)', async (t) => {
  await chopsFailFast(t, whole, 12, 13)
})

t.test('fail fast in the middle of a chop of a 64 KiB frame: 62 KiB still held', async (t) => {
  const payload = Buffer.alloc(65536, 0x61)
  hex('eda080').copy(payload, 3000) // a surrogate at offset 3000
  await chopsFailFast(t, payload, 1000, 4000)
})

t.test('fail fast across fragments in chops: the invalid byte in the middle of the 2nd fragment', async (t) => {
  const c = await server.connect()
  const side = server.last()
  const first = text(Buffer.alloc(100, 0x62), { fin: false })
  const secondPayload = Buffer.concat([Buffer.alloc(50, 0x63), hex('c0af'), Buffer.alloc(1000, 0x63)]) // overlong '/'
  const second = continuation(secondPayload)
  await c.sendChopped(first, 7)
  const head = second.length - secondPayload.length
  await c.send(second.subarray(0, head + 40))
  await serverReceived(side, first.length + head + 40)
  t.equal(side.ws.readyState, 1)
  await c.send(second.subarray(head + 40, head + 60))
  t.same(await c.rest(), [expectClose(1007)], 'closed while the client holds the rest of the 2nd fragment')
})

// ---- 6.5-6.23: the vector groups ----

interface Group { name: string, vectors: Array<[valid: boolean, bytes: Buffer]> }

const range = (from: number, to: number, sep?: number): Buffer => {
  const out: number[] = []
  for (let i = from; i < to; i++) {
    out.push(i)
    if (sep !== undefined) out.push(sep)
  }
  return Buffer.from(out)
}
const V = (s: string): [boolean, Buffer] => [true, hex(s)]
const X = (s: string): [boolean, Buffer] => [false, hex(s)]
const world = (s: string): [boolean, Buffer] => [true, Buffer.concat([Buffer.from('hello'), hex(s), Buffer.from('world')])]

const missing = ['c0', 'e080', 'f08080', 'f8808080', 'fc80808080', 'df', 'efbf', 'f7bfbf', 'fbbfbfbf', 'fdbfbfbfbf']

const noncharacters: Array<[boolean, Buffer]> = [V('efbfbe'), V('efbfbf')]
for (const lead of ['f0', 'f1', 'f2', 'f3', 'f4']) {
  for (const second of ['8f', '9f', 'af', 'bf']) {
    if (lead === 'f4' && second !== '8f') continue // beyond U+10FFFF
    if (lead === 'f0' && second === '8f') continue // overlong
    for (const last of ['be', 'bf']) noncharacters.push(V(lead + second + 'bf' + last))
  }
}

const groups: Group[] = [
  { name: 'valid sequences', vectors: [world('24'), world('c2a2'), world('e282ac'), world('f0a4ada2'), [true, kosme]] },
  {
    name: 'all prefixes of κόσμε (valid only at code point ends)',
    vectors: Array.from({ length: kosme.length }, (_, i) => [[2, 5, 7, 9, 11].includes(i + 1), kosme.subarray(0, i + 1)] as [boolean, Buffer])
  },
  { name: 'first possible sequence of each length', vectors: [V('00'), V('c280'), V('e0a080'), V('f0908080')] },
  { name: 'first possible 5- and 6-byte sequences', vectors: [X('f888808080'), X('fc8480808080')] },
  { name: 'last possible sequence of each length', vectors: [V('7f'), V('dfbf'), V('efbfbf'), V('f48fbfbf')] },
  { name: 'last possible 4-, 5- and 6-byte forms (beyond U+10FFFF)', vectors: [X('f7bfbfbf'), X('fbbfbfbfbf'), X('fdbfbfbfbfbf')] },
  { name: 'other boundary conditions', vectors: [V('ed9fbf'), V('ee8080'), V('efbfbd'), V('f48fbfbf'), X('f4908080')] },
  {
    name: 'unexpected continuation bytes',
    vectors: [X('80'), X('bf'), X('80bf'), X('80bf80'), X('80bf80bf'), X('80bf80bf80'), X('80bf80bf80bf'), [false, range(0x80, 0xbf)]]
  },
  {
    name: 'lonely start bytes',
    vectors: [[false, range(0xc0, 0xdf, 0x20)], [false, range(0xe0, 0xef, 0x20)], [false, range(0xf0, 0xf7, 0x20)], [false, range(0xf8, 0xfb, 0x20)], [false, range(0xfc, 0xfd, 0x20)]]
  },
  { name: 'sequences with the last continuation byte missing', vectors: missing.map(X) },
  { name: 'concatenation of incomplete sequences', vectors: [X(missing.join(''))] },
  { name: 'impossible bytes', vectors: [X('fe'), X('ff'), X('fefeffff')] },
  { name: 'overlong ASCII', vectors: [X('c0af'), X('e080af'), X('f08080af'), X('f8808080af'), X('fc80808080af')] },
  { name: 'maximum overlong sequences', vectors: [X('c1bf'), X('e09fbf'), X('f08fbfbf'), X('f887bfbfbf'), X('fc83bfbfbfbf')] },
  { name: 'overlong NUL', vectors: [X('c080'), X('e08080'), X('f0808080'), X('f880808080'), X('fc8080808080')] },
  { name: 'single UTF-16 surrogates', vectors: [X('eda080'), X('edadbf'), X('edae80'), X('edafbf'), X('edb080'), X('edbe80'), X('edbfbf')] },
  {
    name: 'paired UTF-16 surrogates',
    vectors: [X('eda080edb080'), X('eda080edbfbf'), X('edadbfedb080'), X('edadbfedbfbf'), X('edae80edb080'), X('edae80edbfbf'), X('edafbfedb080'), X('edafbfedbfbf')]
  },
  { name: 'noncharacters (valid UTF-8)', vectors: noncharacters },
  { name: 'Unicode specials (valid UTF-8)', vectors: [V('efbfb9'), V('efbfba'), V('efbfbb'), V('efbfbc'), V('efbfbd'), V('efbfbe'), V('efbfbf')] }
]

groups.forEach((group, g) => {
  t.test(`6.${g + 5}.*: ${group.name}`, async (t) => {
    for (let i = 0; i < group.vectors.length; i++) {
      const [valid, bytes] = group.vectors[i]
      const label = `6.${g + 5}.${i + 1} ${bytes.toString('hex')} ${valid ? 'valid' : 'invalid'}`
      const ways: Array<[string, (c: Awaited<ReturnType<typeof server.connect>>) => Promise<void>]> = [
        ['one frame', (c) => c.send(text(bytes))],
        ['1-byte fragments', (c) => c.send(...oneByteFragments(bytes))],
        ['1-byte chops', (c) => c.sendChopped(text(bytes), 1)]
      ]
      for (const [way, send] of ways) {
        const c = await server.connect()
        await send(c)
        if (valid) t.same(await c.closeAndRest(), [expectText(bytes.toString('utf8')), expectClose(1000)], `${label}, ${way}: echoed`)
        else t.same(await c.rest(), [expectClose(1007)], `${label}, ${way}: 1007`)
      }
    }
  })
})
