// lib/protocol/protocol.ts: the connection state machine around the parser: the closing
// handshake (RFC 6455 §5.5.1, §7), automatic pongs (§5.5.2), one close frame and one `fail` event
// per violation, nothing after a close, and the command side (frames out, argument checks).
import t from 'tap'
import { Opcode } from '../../lib/protocol/constants.js'
import { ReadyState, WebSocketProtocol, checkCloseArguments, toBuffer } from '../../lib/protocol/protocol.js'
import { checkChunkings, closeBody, decodeFrames, frame, outFrame, summarize, summarizeOutput, type Expectation } from './helpers.js'

const close = (code: number, reason = ''): unknown => ({ type: 'close', code, reason })
const fail = (code: string, closeCode: number): unknown => ({ type: 'fail', code, closeCode })
const closeOut = (code?: number): unknown => outFrame(Opcode.Close, code === undefined ? '' : closeBody(code))
const violation = (code: string, closeCode: number): Expectation => ({ events: [fail(code, closeCode)], output: [closeOut(closeCode)] })
const closeFrame = (code: number, reason: string | Uint8Array = ''): Buffer => frame({ opcode: Opcode.Close, payload: closeBody(code, reason) })

t.test('close echo: the status code comes back, the reason does not', async (t) => {
  t.same(checkChunkings(closeFrame(1000, 'bye'), { events: [close(1000, 'bye')], output: [closeOut(1000)] }), [], '1000 "bye"')
  t.same(checkChunkings(frame({ opcode: Opcode.Close, payload: '' }), { events: [close(1005)], output: [closeOut()] }), [],
    'an empty close is answered with an empty close and reads as 1005')
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    t.same(checkChunkings(closeFrame(code, 'r'), { events: [close(code, 'r')], output: [closeOut(code)] }, {}, { everySplit: false, randomCount: 2 }), [], `code ${code}`)
  }
  const reason = 'é'.repeat(61) + 'x' // 123 bytes: the longest reason
  t.same(checkChunkings(closeFrame(4000, reason), { events: [close(4000, reason)], output: [closeOut(4000)] }, {}, { everySplit: false }), [], '123-byte reason')
  // found by the long fuzz run (against a reference that stripped it): a leading U+FEFF is part
  // of the reason and is kept, as the WebSocket API's "UTF-8 decode without BOM" keeps it
  t.same(checkChunkings(closeFrame(1000, '\ufeffbom'), { events: [close(1000, '\ufeffbom')], output: [closeOut(1000)] }), [], 'leading BOM kept')
})

t.test('close code validation (§7.4): invalid codes are 1002, bad reasons 1007', async (t) => {
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
    t.same(checkChunkings(closeFrame(code), violation('WS_ERR_INVALID_CLOSE_CODE', 1002), {}, { everySplit: false, randomCount: 2 }), [], `code ${code}`)
  }
  t.same(checkChunkings(frame({ opcode: Opcode.Close, payload: Buffer.from([0x03]) }), violation('WS_ERR_INVALID_CLOSE_PAYLOAD', 1002)), [], '1-byte body')
  t.same(checkChunkings(closeFrame(1000, Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80])), violation('WS_ERR_INVALID_CLOSE_REASON', 1007)), [], 'surrogate in the reason')
  t.same(checkChunkings(closeFrame(1000, Buffer.from([0xe2, 0x82])), violation('WS_ERR_INVALID_CLOSE_REASON', 1007)), [], 'truncated reason')
  t.same(checkChunkings(frame({ opcode: Opcode.Close, payload: Buffer.alloc(126) }), violation('WS_ERR_CONTROL_FRAME_TOO_LONG', 1002)), [], '126-byte close')
})

t.test('data after a close is ignored; no pong after a close', async (t) => {
  const after = Buffer.concat([
    closeFrame(1000),
    frame({ opcode: 1, payload: 'late' }),
    frame({ opcode: Opcode.Ping, payload: 'p' }),
    frame({ opcode: 3, payload: '' }), // would be a violation, but nobody reads it
    Buffer.from([0xff, 0xff, 0xff])
  ])
  t.same(checkChunkings(after, { events: [close(1000)], output: [closeOut(1000)] }), [], 'nothing after the peer\'s close')
  // a close arriving in the middle of a fragmented message: the partial message is dropped
  const midMessage = Buffer.concat([frame({ fin: false, opcode: 1, payload: 'part' }), closeFrame(1001), frame({ opcode: 0, payload: 'rest' })])
  t.same(checkChunkings(midMessage, { events: [close(1001)], output: [closeOut(1001)] }), [], 'close inside a fragmented message')

  // we close first: pings are still reported but no longer answered; the peer's close is not echoed
  const p = new WebSocketProtocol()
  p.close(1001, 'going')
  t.equal(p.readyState, ReadyState.Closing)
  t.same(summarizeOutput(decodeFrames(p.takeOutput())), [outFrame(Opcode.Close, closeBody(1001, 'going'))])
  p.receive(frame({ opcode: Opcode.Ping, payload: 'still there?' }))
  p.receive(frame({ opcode: 1, payload: 'in flight' }))
  t.same(summarize(p.takeEvents()), [{ type: 'ping', data: Buffer.from('still there?').toString('hex') }, { type: 'message', binary: false, compressed: false, data: Buffer.from('in flight').toString('hex') }])
  t.same(p.takeOutput(), [], 'no pong after our close (§5.5.2 / §5.5.1: nothing after a Close frame)')
  p.receive(closeFrame(1001))
  t.same(summarize(p.takeEvents()), [close(1001)])
  t.same(p.takeOutput(), [], 'the close is not echoed: we already sent ours')
  t.equal(p.readyState, ReadyState.Closed)
  p.close(1000)
  t.same(p.takeOutput(), [], 'a second close() is a no-op')
  t.throws(() => p.sendText('x'), { code: 'FST_ERR_WS_NOT_OPEN' })
  t.throws(() => p.ping(), { code: 'FST_ERR_WS_NOT_OPEN' })
})

t.test('exactly one close frame and one fail event per violation', async (t) => {
  // three violations in a row, in one chunk and byte by byte
  const input = Buffer.concat([
    frame({ opcode: 1, payload: 'ok' }),
    frame({ opcode: 2, payload: 'x', mask: false }),
    frame({ opcode: 0, payload: 'y' }),
    frame({ opcode: 7, payload: '' }),
    closeFrame(1004)
  ])
  t.same(checkChunkings(input, {
    events: [{ type: 'message', binary: false, compressed: false, data: Buffer.from('ok').toString('hex') }, fail('WS_ERR_UNMASKED_FRAME', 1002)],
    output: [closeOut(1002)]
  }), [])
  // a violation after our own close: a fail event, but no second close frame
  const p = new WebSocketProtocol()
  p.close(1000)
  p.takeOutput()
  p.receive(frame({ opcode: 0xb, payload: '' }))
  t.same(summarize(p.takeEvents()), [fail('WS_ERR_RESERVED_OPCODE', 1002)])
  t.same(p.takeOutput(), [], 'only the close we already sent')
  t.equal(p.readyState, ReadyState.Closed)
  p.receive(frame({ opcode: 1, payload: 'more' }))
  p.receiveEnd()
  t.same(p.takeEvents(), [], 'nothing after a failure, not even `end`')
  // after a failure, commands are refused and the failing close code is remembered
  const q = new WebSocketProtocol()
  q.receive(frame({ opcode: 1, payload: Buffer.from([0xff]) }))
  t.equal(q.sentCloseCode, 1007)
  t.throws(() => q.sendBinary(Buffer.from('x')), { code: 'FST_ERR_WS_NOT_OPEN' })
})

t.test('transport end', async (t) => {
  const p = new WebSocketProtocol()
  p.receive(frame({ fin: false, opcode: 1, payload: 'half' }))
  p.receiveEnd()
  t.same(summarize(p.takeEvents()), [{ type: 'end' }])
  t.equal(p.readyState, ReadyState.Closed)
  p.receive(frame({ opcode: 0, payload: '!' }))
  p.receiveEnd()
  t.same(p.takeEvents(), [], 'input after the end is ignored, `end` is reported once')
  t.same(p.takeOutput(), [])
  p.close(1000)
  t.same(p.takeOutput(), [], 'no close frame once the transport ended')
  const q = new WebSocketProtocol()
  q.receive(closeFrame(1000))
  q.receiveEnd()
  t.same(summarize(q.takeEvents()), [close(1000)], 'no `end` after a clean close')
})

t.test('commands: frames out', async (t) => {
  const p = new WebSocketProtocol()
  t.equal(p.readyState, ReadyState.Open)
  p.sendText('héllo')
  p.sendBinary(Buffer.from([1, 2, 3]))
  p.sendBinary(new Uint16Array([0x0102, 0x0304]))
  p.sendBinary(new Uint8Array([9, 8, 7]).buffer)
  p.sendBinary(new DataView(new Uint8Array([5, 6, 7, 8]).buffer, 1, 2))
  p.ping('p')
  p.pong(Buffer.from('q'))
  p.sendFragment(Opcode.Text, Buffer.from('ab'), { fin: false })
  p.sendFragment(Opcode.Continuation, Buffer.from('c'), { fin: true })
  p.sendText('x'.repeat(70000))
  t.ok(p.pendingOutput > 70000)
  const frames = decodeFrames(p.takeOutput())
  t.equal(p.pendingOutput, 0)
  t.same(frames.map((f) => [f.opcode, f.fin, f.masked]), [
    [1, true, false], [2, true, false], [2, true, false], [2, true, false], [2, true, false], [9, true, false], [10, true, false],
    [1, false, false], [0, true, false], [1, true, false]
  ])
  t.equal(frames[0].payload.toString(), 'héllo')
  t.same([...frames[2].payload], [...Buffer.from(new Uint16Array([0x0102, 0x0304]).buffer)])
  t.same([...frames[3].payload], [9, 8, 7])
  t.same([...frames[4].payload], [6, 7])
  t.equal(frames[9].payload.length, 70000)
  // the client role masks everything it sends
  const c = new WebSocketProtocol({ role: 'client' })
  c.sendText('masked')
  c.close(1000, 'bye')
  const cf = decodeFrames(c.takeOutput())
  t.same(cf.map((f) => [f.opcode, f.masked, f.payload.toString('hex')]), [
    [1, true, Buffer.from('masked').toString('hex')], [8, true, closeBody(1000, 'bye').toString('hex')]
  ])
})

t.test('command argument checks', async (t) => {
  const p = new WebSocketProtocol()
  t.throws(() => p.ping(Buffer.alloc(126)), RangeError)
  t.throws(() => p.pong('x'.repeat(126)), RangeError)
  t.throws(() => p.close(1005), { code: 'FST_ERR_WS_INVALID_CLOSE_CODE' })
  t.throws(() => p.close(1000.5), { code: 'FST_ERR_WS_INVALID_CLOSE_CODE' })
  t.throws(() => p.close(999), { code: 'FST_ERR_WS_INVALID_CLOSE_CODE' })
  t.throws(() => p.close(1000, 'x'.repeat(124)), { code: 'FST_ERR_WS_CLOSE_REASON_TOO_LONG' })
  t.throws(() => p.close(1000, 'é'.repeat(62)), { code: 'FST_ERR_WS_CLOSE_REASON_TOO_LONG' }, '124 bytes in 62 characters')
  t.throws(() => p.close(undefined, 'why'), { code: 'FST_ERR_WS_CLOSE_REASON_WITHOUT_CODE' })
  t.same(p.takeOutput(), [], 'nothing was written by the refused calls')
  t.doesNotThrow(() => checkCloseArguments(4999, 'x'.repeat(123)))
  t.doesNotThrow(() => checkCloseArguments(undefined, ''))
  t.throws(() => toBuffer(42 as unknown as Buffer), TypeError)
  t.throws(() => toBuffer({ length: 3 } as unknown as Buffer), TypeError)
  t.throws(() => p.sendBinary('str' as unknown as Buffer), TypeError)
  t.equal(p.readyState, ReadyState.Open)
})
