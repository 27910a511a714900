// lib/protocol/protocol.ts closeInitiator: who started the closing handshake (RFC 6455 §7.1.2),
// read by the plugin's close log line.
import t from 'tap'
import { Opcode } from '../../lib/protocol/constants.js'
import { WebSocketProtocol } from '../../lib/protocol/protocol.js'
import { closeBody, frame } from './helpers.js'

const closeFrame = (code: number): Buffer => frame({ opcode: Opcode.Close, payload: closeBody(code) })

t.test('undefined while no Close frame went either way', async (t) => {
  const core = new WebSocketProtocol()
  t.equal(core.closeInitiator, undefined)
  core.receive(frame({ opcode: Opcode.Text, payload: 'hi' }))
  core.takeEvents()
  t.equal(core.closeInitiator, undefined)
  core.receiveEnd()
  t.equal(core.closeInitiator, undefined, 'a TCP end without a Close frame')
})

t.test("'peer' when the peer's Close came first, also once our echo is out", async (t) => {
  const core = new WebSocketProtocol()
  core.receive(closeFrame(1000))
  core.takeEvents()
  t.ok(core.closing, 'the echo is queued')
  t.equal(core.closeInitiator, 'peer')
})

t.test("'peer' when the Close arrives behind a message not taken yet (its echo waits)", async (t) => {
  const core = new WebSocketProtocol()
  core.receive(Buffer.concat([frame({ opcode: Opcode.Text, payload: 'last' }), closeFrame(1001)]))
  core.takeEvent() // the message; the application closes in answer to it
  core.close(1000)
  core.takeEvents()
  t.equal(core.closeInitiator, 'peer')
})

t.test("'local' when ours went first, the peer's answer after it; and after a failure", async (t) => {
  const core = new WebSocketProtocol()
  core.close(4000, 'bye')
  t.equal(core.closeInitiator, 'local')
  core.receive(closeFrame(4000))
  core.takeEvents()
  t.equal(core.closeInitiator, 'local')

  const failed = new WebSocketProtocol()
  failed.receive(frame({ opcode: Opcode.Text, payload: 'x', mask: false }))
  t.match(failed.takeEvents(), [{ type: 'fail' }])
  t.equal(failed.closeInitiator, 'local', 'the server failed the connection: its Close went first')
})
