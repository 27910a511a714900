// Replies the core owes (pong, close echo, failure close) wait behind messages the application
// has not taken yet, so an application's answer to a message is written before them.
// RFC 6455 §5.5.1: after sending a Close frame an endpoint MUST NOT send more data frames; a
// message that arrived before the peer's Close can therefore only be answered if the echo waits.
import t from 'tap'
import { Opcode } from '../../lib/protocol/constants.js'
import { WebSocketProtocol } from '../../lib/protocol/protocol.js'
import { closeBody, decodeFrames, frame } from './helpers.js'

t.test('message + ping + close in one read: answer, pong, close echo — in that order', async (t) => {
  const core = new WebSocketProtocol()
  core.receive(Buffer.concat([
    frame({ opcode: Opcode.Text, payload: 'question' }),
    frame({ opcode: Opcode.Ping, payload: 'p' }),
    frame({ opcode: Opcode.Close, payload: closeBody(1000) })
  ]))
  t.equal(core.pendingEvents, 3)
  t.same(core.takeOutput(), [], 'no reply is written before the message is taken')
  const first = core.takeEvent()
  t.equal(first?.type, 'message')
  t.equal(core.readyState, 1, 'still open while the application handles the message')
  core.sendText('answer')
  t.equal(core.takeEvent()?.type, 'ping')
  t.equal(core.takeEvent()?.type, 'close')
  t.equal(core.takeEvent(), undefined)
  const out = decodeFrames(core.takeOutput()).map((f) => [f.opcode, Buffer.from(f.payload).toString('latin1')])
  t.same(out, [[Opcode.Text, 'answer'], [Opcode.Pong, 'p'], [Opcode.Close, '\x03\xe8']])
  t.throws(() => core.sendText('late'), { code: 'FST_ERR_WS_NOT_OPEN' }, 'no data after the close echo')
})

t.test('a ping with no message before it is answered at once', async (t) => {
  const core = new WebSocketProtocol()
  core.receive(frame({ opcode: Opcode.Ping, payload: 'now' }))
  const out = decodeFrames(core.takeOutput())
  t.same(out.map((f) => f.opcode), [Opcode.Pong], 'pong queued before the event is taken')
  t.equal(core.takeEvent()?.type, 'ping')
})

t.test('takeEvents() keeps the same order as taking one by one', async (t) => {
  const core = new WebSocketProtocol()
  core.receive(Buffer.concat([
    frame({ opcode: Opcode.Binary, payload: 'x' }),
    frame({ opcode: Opcode.Text, payload: Buffer.from([0xc0, 0x80]) }) // overlong: 1007
  ]))
  const events = core.takeEvents()
  t.same(events.map((e) => e.type), ['message', 'fail'])
  const out = decodeFrames(core.takeOutput())
  t.same(out.map((f) => [f.opcode, (f.payload[0] << 8) | f.payload[1]]), [[Opcode.Close, 1007]])
})

t.test('holdReplies: a Ping or a Close with no message before it waits until its event is taken', async (t) => {
  const core = new WebSocketProtocol()
  core.holdReplies = true
  core.receive(Buffer.concat([
    frame({ opcode: Opcode.Ping, payload: 'later' }),
    frame({ opcode: Opcode.Close, payload: closeBody(1001) })
  ]))
  t.same(core.takeOutput(), [], 'nothing written while the adapter holds the replies')
  t.equal(core.nextEventType, 'ping', 'the next event can be seen without taking it')
  t.same(core.takeOutput(), [], 'and seeing it writes nothing')
  core.sendText('an answer still owed')
  t.equal(core.takeEvent()?.type, 'ping')
  t.equal(core.takeEvent()?.type, 'close')
  t.equal(core.nextEventType, undefined)
  const out = decodeFrames(core.takeOutput()).map((f) => f.opcode)
  t.same(out, [Opcode.Text, Opcode.Pong, Opcode.Close], 'the answer, then the Pong, then the Close echo')
  core.holdReplies = false
  t.equal(core.holdReplies, false)
})
