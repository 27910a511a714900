// lib/protocol/parser.ts (through the WebSocketProtocol core): every rule of RFC 6455 §5 as byte
// vectors, fed whole, byte by byte, at every split point and at random splits. Each vector
// asserts the events (takeEvents) and the bytes written back (takeOutput).
import t from 'tap'
import { Opcode } from '../../lib/protocol/constants.js'
import { FrameParser } from '../../lib/protocol/parser.js'
import {
  checkChunkings, closeBody, frame, outFrame, prng, randomBytes, run, summarize, type Expectation
} from './helpers.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const msg = (data: string | Buffer, binary = false, compressed = false): unknown =>
  ({ type: 'message', binary, compressed, data: Buffer.from(data).toString('hex') })
const fail = (code: string, closeCode: number): unknown => ({ type: 'fail', code, closeCode })
const closeOut = (code: number): unknown => outFrame(Opcode.Close, closeBody(code))
/** a violation: exactly one fail event (after `before`) and exactly one Close frame with its code */
const violation = (code: string, closeCode: number, before: unknown[] = [], outBefore: unknown[] = []): Expectation =>
  ({ events: [...before, fail(code, closeCode)], output: [...outBefore, closeOut(closeCode)] })

t.test('RFC 6455 §5.7 examples', async (t) => {
  const unmaskedHello = hex('81 05 48 65 6c 6c 6f')
  const maskedHello = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58')
  t.same(checkChunkings(unmaskedHello, violation('WS_ERR_UNMASKED_FRAME', 1002)), [],
    'single-frame unmasked "Hello" from a client fails with 1002 in the server role')
  t.same(checkChunkings(unmaskedHello, { events: [msg('Hello')], output: [] }, { role: 'client' }), [],
    'single-frame unmasked "Hello" is a message in the client role')
  t.same(checkChunkings(maskedHello, { events: [msg('Hello')], output: [] }), [], 'single-frame masked "Hello"')
  {
    const r = run([Buffer.from(maskedHello)], { role: 'client' })
    t.same(summarize(r.events), [fail('WS_ERR_MASKED_FRAME', 1002)], 'masked "Hello" to a client fails')
    t.equal(r.output.length, 1, 'with one (masked) close frame')
    t.match(r.output[0], { opcode: 8, masked: true })
    t.equal(r.output[0].payload.readUInt16BE(0), 1002)
  }

  const fragmented = hex('01 03 48 65 6c 80 02 6c 6f')
  t.same(checkChunkings(fragmented, { events: [msg('Hello')], output: [] }, { role: 'client' }), [], 'fragmented unmasked "Hel"+"lo" (client role)')
  const fragmentedMasked = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'Hel' }), frame({ opcode: 0, payload: 'lo' })])
  t.same(checkChunkings(fragmentedMasked, { events: [msg('Hello')], output: [] }), [], 'fragmented masked "Hel"+"lo"')

  const unmaskedPing = hex('89 05 48 65 6c 6c 6f')
  t.same(checkChunkings(unmaskedPing, violation('WS_ERR_UNMASKED_FRAME', 1002)), [], 'unmasked ping to a server fails')
  const maskedPing = frame({ opcode: Opcode.Ping, payload: 'Hello' })
  t.same(checkChunkings(maskedPing, { events: [{ type: 'ping', data: Buffer.from('Hello').toString('hex') }], output: [outFrame(Opcode.Pong, 'Hello')] }), [],
    'masked ping: event and an automatic pong with the same payload')
  {
    // client role: the unmasked ping of §5.7 is answered with a masked pong "Hello"
    const r = run([Buffer.from(unmaskedPing)], { role: 'client' })
    t.same(summarize(r.events), [{ type: 'ping', data: Buffer.from('Hello').toString('hex') }])
    t.match(r.output, [{ opcode: Opcode.Pong, masked: true }])
    t.equal(r.output[0].payload.toString(), 'Hello')
  }
  const maskedPong = hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58')
  t.same(checkChunkings(maskedPong, { events: [{ type: 'pong', data: Buffer.from('Hello').toString('hex') }], output: [] }), [],
    'masked pong "Hello" (§5.7) is an event, nothing is written')

  const b256 = randomBytes(prng(256), 256)
  const f256 = Buffer.concat([hex('82 7e 01 00'), b256])
  t.same(checkChunkings(f256, { events: [msg(b256, true)], output: [] }, { role: 'client' }), [], '256-byte binary, 16-bit length (client role)')
  t.same(checkChunkings(frame({ opcode: 2, payload: b256 }), { events: [msg(b256, true)], output: [] }), [], '256-byte binary, masked')

  const b64k = randomBytes(prng(65536), 65536)
  const f64k = Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), b64k])
  const few = { everySplit: false, randomCount: 5 }
  t.same(checkChunkings(f64k, { events: [msg(b64k, true)], output: [] }, { role: 'client' }, few), [], '64 KiB binary, 64-bit length (client role)')
  const m64k = frame({ opcode: 2, payload: b64k })
  t.same(checkChunkings(m64k, { events: [msg(b64k, true)], output: [] }, {}, few), [], '64 KiB binary, masked')
  // split points around the header/payload boundary and a few inside
  let bad = 0
  for (const s of [1, 2, 9, 10, 13, 14, 15, 100, 32768, 65549]) {
    const r = run([Buffer.from(m64k.subarray(0, s)), Buffer.from(m64k.subarray(s))])
    if (r.events.length !== 1 || r.events[0].type !== 'message' || !r.events[0].data.equals(b64k)) bad++
  }
  t.equal(bad, 0, '64 KiB split near the header')
})

t.test('messages, empty frames, interleaved controls, many frames in one chunk', async (t) => {
  t.same(checkChunkings(frame({ opcode: 1, payload: '' }), { events: [msg('')], output: [] }), [], 'empty text')
  t.same(checkChunkings(frame({ opcode: 2, payload: '' }), { events: [msg('', true)], output: [] }), [], 'empty binary')
  const emptyFragments = Buffer.concat([
    frame({ fin: false, opcode: 1, payload: '' }), frame({ fin: false, opcode: 0, payload: '' }), frame({ opcode: 0, payload: '' })
  ])
  t.same(checkChunkings(emptyFragments, { events: [msg('')], output: [] }), [], 'three empty fragments')
  const interleaved = Buffer.concat([
    frame({ fin: false, opcode: 1, payload: 'Hel' }),
    frame({ opcode: Opcode.Ping, payload: 'p1' }),
    frame({ fin: false, opcode: 0, payload: 'l' }),
    frame({ opcode: Opcode.Pong, payload: '' }),
    frame({ opcode: Opcode.Ping, payload: '' }),
    frame({ opcode: 0, payload: 'o' }),
    frame({ opcode: 2, payload: Buffer.from([1, 2, 3]) })
  ])
  t.same(checkChunkings(interleaved, {
    events: [
      { type: 'ping', data: Buffer.from('p1').toString('hex') }, { type: 'pong', data: '' }, { type: 'ping', data: '' },
      msg('Hello'), msg(Buffer.from([1, 2, 3]), true)
    ],
    output: [outFrame(Opcode.Pong, 'p1'), outFrame(Opcode.Pong, '')]
  }), [], 'controls between fragments, then a binary message')
  // a fragmented text message whose code points are split across fragments
  const euro = Buffer.from('€uro 😀')
  const split = Buffer.concat([
    frame({ fin: false, opcode: 1, payload: euro.subarray(0, 1) }),
    frame({ fin: false, opcode: 0, payload: euro.subarray(1, 6) }),
    frame({ fin: false, opcode: 0, payload: euro.subarray(6, 8) }),
    frame({ opcode: 0, payload: euro.subarray(8) })
  ])
  t.same(checkChunkings(split, { events: [msg(euro)], output: [] }), [], 'multi-byte characters split across fragments')
  // non-minimal length encodings are accepted (the MUST binds the sender)
  const nonMinimal = Buffer.concat([frame({ opcode: 1, payload: 'a', lengthBytes: 2 }), frame({ opcode: 1, payload: 'b', lengthBytes: 8 })])
  t.same(checkChunkings(nonMinimal, { events: [msg('a'), msg('b')], output: [] }), [], 'non-minimal lengths')
  // 200 messages in one chunk
  const many = Buffer.concat(Array.from({ length: 200 }, (_, i) => frame({ opcode: 1, payload: `m${i}` })))
  const r = run([many])
  t.same(r.events.map((e) => e.type === 'message' ? e.data.toString() : e.type), Array.from({ length: 200 }, (_, i) => `m${i}`))
})

t.test('§5.1 masking rules', async (t) => {
  t.same(checkChunkings(frame({ opcode: 2, payload: 'x', mask: false }), violation('WS_ERR_UNMASKED_FRAME', 1002)), [],
    'server: "The server MUST close the connection upon receiving a frame that is not masked"')
  t.same(checkChunkings(frame({ opcode: 2, payload: '', mask: false }), violation('WS_ERR_UNMASKED_FRAME', 1002)), [], 'empty unmasked frame')
  const r = run([frame({ opcode: 2, payload: 'x' })], { role: 'client' })
  t.same(summarize(r.events), [fail('WS_ERR_MASKED_FRAME', 1002)], 'client: "A client MUST close a connection if it detects a masked frame"')
  t.equal(r.output.length, 1)
  t.match(r.output[0], { opcode: Opcode.Close, masked: true })
})

t.test('§5.2 RSV bits and reserved opcodes', async (t) => {
  for (let rsv = 1; rsv < 8; rsv++) {
    t.same(checkChunkings(frame({ opcode: 1, rsv, payload: 'a' }), violation('WS_ERR_RESERVED_BITS', 1002)), [], `text with RSV=${rsv}`)
    t.same(checkChunkings(frame({ opcode: Opcode.Ping, rsv, payload: 'a' }), violation('WS_ERR_RESERVED_BITS', 1002), { allowRsv1: true }), [],
      `ping with RSV=${rsv} even with permessage-deflate`)
  }
  // with permessage-deflate negotiated: RSV1 on the first frame only
  t.same(checkChunkings(frame({ opcode: 2, rsv: 4, payload: 'zz' }), { events: [msg('zz', true, true)], output: [] }, { allowRsv1: true }), [],
    'RSV1 on a data frame with permessage-deflate: a compressed message')
  t.same(checkChunkings(frame({ opcode: 1, rsv: 2, payload: 'a' }), violation('WS_ERR_RESERVED_BITS', 1002), { allowRsv1: true }), [], 'RSV2 with deflate')
  const rsv1Continuation = Buffer.concat([frame({ fin: false, opcode: 1, rsv: 4, payload: 'a' }), frame({ opcode: 0, rsv: 4, payload: 'b' })])
  t.same(checkChunkings(rsv1Continuation, violation('WS_ERR_RESERVED_BITS', 1002), { allowRsv1: true }), [], 'RSV1 on a continuation frame')
  // a compressed text message is not UTF-8 checked by the parser (it is deflate data)
  t.same(checkChunkings(frame({ opcode: 1, rsv: 4, payload: hex('ff fe') }), { events: [msg(hex('ff fe'), false, true)], output: [] }, { allowRsv1: true }), [],
    'compressed text is checked after inflation, not here')
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    t.same(checkChunkings(frame({ opcode, payload: 'a' }), violation('WS_ERR_RESERVED_OPCODE', 1002)), [], `reserved opcode ${opcode.toString(16)}`)
  }
  // a reserved opcode after a valid message: the message is delivered first
  const after = Buffer.concat([frame({ opcode: 1, payload: 'ok' }), frame({ opcode: 3, payload: '' })])
  t.same(checkChunkings(after, violation('WS_ERR_RESERVED_OPCODE', 1002, [msg('ok')])), [], 'violation after a message')
  // 64-bit length with the most significant bit set
  const msb = frame({ opcode: 2, lengthBytes: 8, rawLength: 0x8000000000000000n })
  t.same(checkChunkings(msb, violation('WS_ERR_LENGTH_MSB_SET', 1002)), [], '64-bit length with MSB set')
})

t.test('§5.5 control frames', async (t) => {
  for (const opcode of [Opcode.Ping, Opcode.Pong, Opcode.Close]) {
    t.same(checkChunkings(frame({ fin: false, opcode, payload: '' }), violation('WS_ERR_FRAGMENTED_CONTROL_FRAME', 1002)), [],
      `fragmented control frame ${opcode}`)
    t.same(checkChunkings(frame({ opcode, payload: Buffer.alloc(126) }), violation('WS_ERR_CONTROL_FRAME_TOO_LONG', 1002)), [],
      `control frame ${opcode} with 126 bytes`)
    // the length is refused from the header, before any payload arrives
    const header = frame({ opcode, payload: Buffer.alloc(126) }).subarray(0, 8)
    t.same(summarize(run([Buffer.from(header)]).events), [fail('WS_ERR_CONTROL_FRAME_TOO_LONG', 1002)], `control ${opcode} too long, header only`)
  }
  const p125 = Buffer.alloc(125, 0x61)
  t.same(checkChunkings(frame({ opcode: Opcode.Ping, payload: p125 }), {
    events: [{ type: 'ping', data: p125.toString('hex') }], output: [outFrame(Opcode.Pong, p125)]
  }), [], 'ping with 125 bytes is answered with the same 125 bytes')
  // a fragmented ping inside a fragmented message
  const inMessage = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'a' }), frame({ fin: false, opcode: Opcode.Ping, payload: 'x' })])
  t.same(checkChunkings(inMessage, violation('WS_ERR_FRAGMENTED_CONTROL_FRAME', 1002)), [], 'fragmented ping inside a message')
})

t.test('§5.4 fragmentation rules', async (t) => {
  t.same(checkChunkings(frame({ opcode: 0, payload: 'x' }), violation('WS_ERR_UNEXPECTED_CONTINUATION', 1002)), [], 'continuation without a message')
  t.same(checkChunkings(frame({ fin: false, opcode: 0, payload: '' }), violation('WS_ERR_UNEXPECTED_CONTINUATION', 1002)), [], 'non-final continuation without a message')
  const afterEnd = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'a' }), frame({ opcode: 0, payload: 'b' }), frame({ opcode: 0, payload: 'c' })])
  t.same(checkChunkings(afterEnd, violation('WS_ERR_UNEXPECTED_CONTINUATION', 1002, [msg('ab')])), [], 'continuation after the message ended')
  for (const opcode of [1, 2]) {
    const nested = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'a' }), frame({ opcode, payload: 'b' })])
    t.same(checkChunkings(nested, violation('WS_ERR_EXPECTED_CONTINUATION', 1002)), [], `new data frame (${opcode}) inside a fragmented message`)
  }
})

t.test('limits: maxPayload from the header before the payload (1009), maxFragments (1009)', async (t) => {
  const opts = { maxPayload: 100 }
  t.same(checkChunkings(frame({ opcode: 2, payload: Buffer.alloc(100) }), { events: [msg(Buffer.alloc(100), true)], output: [] }, opts), [], 'exactly maxPayload')
  t.same(checkChunkings(frame({ opcode: 2, payload: Buffer.alloc(101) }), violation('WS_ERR_MESSAGE_TOO_BIG', 1009), opts), [], 'maxPayload + 1')
  // header only: refused before any payload byte arrives
  for (const len of [101, 65536, 2 ** 32, 2 ** 53]) {
    const head = frame({ opcode: 2, lengthBytes: len < 65536 ? 2 : 8, rawLength: BigInt(len) }).subarray(0, len < 65536 ? 8 : 14)
    if (len < 65536) head.writeUInt16BE(len, 2)
    const r = run([Buffer.from(head)], opts)
    t.same(summarize(r.events), [fail('WS_ERR_MESSAGE_TOO_BIG', 1009)], `header announcing ${len} bytes`)
    t.same(r.output.map((f) => f.payload.readUInt16BE(0)), [1009])
    t.equal(r.proto.bufferedInput, 0, 'nothing buffered')
  }
  // across fragments: the sum is checked at the header of the fragment that crosses the limit
  const frags = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'a'.repeat(60) }), frame({ opcode: 0, payload: 'b'.repeat(41) })])
  t.same(checkChunkings(frags, violation('WS_ERR_MESSAGE_TOO_BIG', 1009), opts), [], 'fragments summing over maxPayload')
  const fits = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'a'.repeat(60) }), frame({ opcode: 0, payload: 'b'.repeat(40) })])
  t.same(checkChunkings(fits, { events: [msg('a'.repeat(60) + 'b'.repeat(40))], output: [] }, opts), [], 'fragments summing to maxPayload')
  // control frames do not count towards a message
  const withPing = Buffer.concat([frame({ fin: false, opcode: 2, payload: Buffer.alloc(90) }), frame({ opcode: 9, payload: Buffer.alloc(50) }), frame({ opcode: 0, payload: Buffer.alloc(10) })])
  t.same(summarize(run([withPing], opts).events).map((e) => (e as { type: string }).type), ['ping', 'message'])
  // maxFragments
  const fragOpts = { maxFragments: 3 }
  const three = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'a' }), frame({ fin: false, opcode: 0, payload: 'b' }), frame({ opcode: 0, payload: 'c' })])
  t.same(checkChunkings(three, { events: [msg('abc')], output: [] }, fragOpts), [], 'maxFragments fragments')
  const four = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'a' }), frame({ fin: false, opcode: 0, payload: 'b' }), frame({ fin: false, opcode: 0, payload: 'c' }), frame({ opcode: 0, payload: '' })])
  t.same(checkChunkings(four, violation('WS_ERR_TOO_MANY_FRAGMENTS', 1009), fragOpts), [], 'maxFragments + 1 (empty last fragment counts)')
  // the fragment count starts again with each message
  const twoMessages = Buffer.concat([three, three])
  t.same(checkChunkings(twoMessages, { events: [msg('abc'), msg('abc')], output: [] }, fragOpts, { everySplit: false }), [], 'count resets per message')
})

t.test('§8.1 invalid UTF-8 in text fails with 1007, as soon as it arrives', async (t) => {
  t.same(checkChunkings(frame({ opcode: 1, payload: hex('ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64') }),
    violation('WS_ERR_INVALID_UTF8', 1007)), [], 'single frame with a surrogate')
  t.same(checkChunkings(frame({ opcode: 1, payload: hex('c2') }), violation('WS_ERR_INVALID_UTF8', 1007)), [], 'message ends inside a sequence')
  t.same(checkChunkings(frame({ opcode: 2, payload: hex('ff fe c0') }), { events: [msg(hex('ff fe c0'), true)], output: [] }), [], 'binary is not checked')
  // split across fragments: E0 | 80 (overlong), ED | A0 80 (surrogate)
  for (const [a, b] of [['e0', '80 80'], ['ed', 'a0 80'], ['f4', '90 80 80'], ['ce ba f0 9f', '98']]) {
    const v = Buffer.concat([frame({ fin: false, opcode: 1, payload: hex(a) }), frame({ opcode: 0, payload: hex(b) })])
    t.same(checkChunkings(v, violation('WS_ERR_INVALID_UTF8', 1007)), [], `split ${a} | ${b}`)
  }
  // fails before the message ends: the bad byte arrives in a non-final fragment and nothing
  // else follows (Autobahn 6.4.x)
  const early = frame({ fin: false, opcode: 1, payload: Buffer.concat([Buffer.from('κόσμε'), hex('f4 90 80 80'), Buffer.from('edited')]) })
  t.same(checkChunkings(early, violation('WS_ERR_INVALID_UTF8', 1007)), [], 'bad byte in a non-final fragment')
  // ... and in the middle of a frame whose end never arrives
  const whole = frame({ opcode: 1, payload: Buffer.concat([Buffer.from('κόσμε'), hex('f4 90'), Buffer.alloc(1000, 0x61)]) })
  const partial = whole.subarray(0, 4 + 4 + 10 + 2) // header (4 + key) + kosme + F4 90
  t.same(checkChunkings(partial, violation('WS_ERR_INVALID_UTF8', 1007)), [], 'bad byte mid-frame, before the frame ends')
  const stillOpen = whole.subarray(0, 4 + 4 + 10 + 1) // ... + F4 only: could still be valid
  t.same(checkChunkings(stillOpen, { events: [], output: [] }), [], 'an open sequence is not yet a failure')
  // a valid message, then an invalid one: the first is delivered
  const two = Buffer.concat([frame({ opcode: 1, payload: 'ok' }), frame({ opcode: 1, payload: hex('80') })])
  t.same(checkChunkings(two, violation('WS_ERR_INVALID_UTF8', 1007, [msg('ok')])), [], 'after a valid message')
})

t.test('a 16 MiB message in 64-byte fragments (maxPayload and maxFragments raised)', async (t) => {
  const size = 16 * 1024 * 1024
  const payload = randomBytes(prng(16), size)
  const frames: Buffer[] = []
  for (let o = 0; o < size; o += 64) {
    frames.push(frame({ fin: o + 64 >= size, opcode: o === 0 ? 2 : 0, payload: payload.subarray(o, o + 64) }))
  }
  const wire = Buffer.concat(frames)
  t.equal(wire.length, size + (size / 64) * 6)
  const opts = { maxPayload: size, maxFragments: size / 64 }
  // fed in 16 KiB reads, then in reads of 4099 bytes (frames straddle every read)
  for (const step of [16384, 4099]) {
    const r = run(Array.from({ length: Math.ceil(wire.length / step) }, (_, i) => Buffer.from(wire.subarray(i * step, (i + 1) * step))), opts)
    t.equal(r.events.length, 1, `one event (reads of ${step})`)
    const e = r.events[0]
    t.ok(e.type === 'message' && e.binary && e.data.equals(payload), 'the message arrives intact')
    t.equal(r.output.length, 0)
    t.equal(r.proto.bufferedInput, 0, 'nothing left buffered')
  }
  // one fragment over the limit is refused
  const r = run([Buffer.from(wire)], { maxPayload: size - 1, maxFragments: size / 64 })
  t.same(summarize(r.events), [fail('WS_ERR_MESSAGE_TOO_BIG', 1009)])
})

t.test('FrameParser directly: buffered bytes are bounded by what frames announced', async (t) => {
  const events: string[] = []
  const parser = new FrameParser({
    onMessage: (data) => events.push(`message ${data.length}`),
    onControl: (opcode) => events.push(`control ${opcode}`),
    onFail: (err) => events.push(`fail ${err.code}`)
  }, { role: 'server', maxPayload: 1 << 20, maxFragments: 1 << 20, allowRsv1: false })
  // a 10-byte frame arriving byte by byte never holds more than its 10 bytes
  const f = frame({ fin: false, opcode: 2, payload: Buffer.alloc(10, 1) })
  for (let i = 0; i < f.length; i++) parser.push(Buffer.from(f.subarray(i, i + 1)))
  t.ok(parser.inMessage)
  t.ok(parser.bufferedBytes <= 1024, `buffered ${parser.bufferedBytes}`)
  parser.push(frame({ opcode: 0, payload: Buffer.alloc(5) }))
  t.same(events, ['message 15'])
  t.notOk(parser.inMessage)
  parser.stop()
  parser.push(frame({ opcode: 0x3, payload: '' }))
  t.same(events, ['message 15'], 'nothing after stop()')
})
