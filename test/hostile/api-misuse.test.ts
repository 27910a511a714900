// send / ping / pong / close given the wrong things (issue 5): a TypeError or RangeError (or a
// stable FST_ERR_WS_* code on the close errors), and never uninitialised or partial bytes on the wire.
import t from 'tap'
import { once } from 'node:events'
import { closeCodeOf, deadline, tcpPair } from './helpers.js'

const off = { heartbeatInterval: 0, incompleteMessageTimeout: 0 }

t.test('bad arguments throw and put nothing on the wire; typed arrays send their exact bytes', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)

  // send: only strings, bytes, and plain objects/arrays (JSON)
  class Thing { x = 1 }
  for (const bad of [42, 4.2, NaN, true, null, undefined, Symbol('s'), () => 1, 10n, new Date(0), new Map(), new Set(), Promise.resolve(), new Thing()]) {
    t.throws(() => ws.send(bad as never), TypeError, `send(${typeof bad === 'symbol' ? 'symbol' : String(bad)})`)
  }
  // ping / pong: at most 125 bytes of string or bytes
  for (const method of ['ping', 'pong'] as const) {
    t.throws(() => ws[method](42 as never), TypeError, `${method}(42)`)
    t.throws(() => ws[method]({} as never), TypeError, `${method}({})`)
    t.throws(() => ws[method]('x'.repeat(126)), RangeError, `${method}(126 chars)`)
    t.throws(() => ws[method]('é'.repeat(63)), RangeError, `${method}(63 two-byte chars = 126 bytes)`)
    t.throws(() => ws[method](new Float64Array(16)), RangeError, `${method}(Float64Array(16) = 128 bytes)`)
  }
  // close: a valid code and at most 123 bytes of reason
  for (const [code, reason] of [['1000', undefined], [1000.5, undefined], [999, undefined], [1005, undefined], [1006, undefined], [5000, undefined], [1000, 42], [1000, 'x'.repeat(124)], [1000, 'é'.repeat(62)], [undefined, 'reason without code']] as const) {
    let thrown: (Error & { code?: string }) | undefined
    try { ws.close(code as never, reason as never) } catch (err) { thrown = err as Error }
    const thrownCode = (thrown as { code?: unknown } | undefined)?.code
    t.ok((thrown instanceof TypeError || thrown instanceof RangeError) && typeof thrownCode === 'string' && thrownCode.startsWith('FST_ERR_WS_'),
      `close(${JSON.stringify(code)}, ${JSON.stringify(reason)}) throws ${thrown?.name} ${thrown?.code ?? ''}`)
  }
  t.equal(ws.readyState, 1, 'still open after every refused call')

  // what is accepted goes out byte-exact
  const f64 = new Float64Array([1.5, -2])
  const u16 = new Uint16Array([0x0102, 0xfffe])
  const backing = Buffer.from('0123456789abcdef')
  const view = new DataView(backing.buffer, backing.byteOffset + 4, 6)
  const sub = new Uint32Array(new Uint8Array(16).fill(0xab).buffer, 4, 2)
  ws.send(f64)
  ws.send(u16)
  ws.send(view)
  ws.send(sub)
  ws.send('\ud800 lone surrogate')
  ws.send({ a: [1, 'two'] })
  ws.ping(new Uint32Array(31)) // 124 bytes: fine
  ws.close(1000, 'é'.repeat(61)) // 122 bytes: fine
  const frames = await client.waitFrames(8)
  t.same(frames.map((f) => f.opcode), [2, 2, 2, 2, 1, 1, 9, 8], 'exactly the accepted frames, nothing else')
  t.ok(frames[0].payload.equals(Buffer.from(f64.buffer)), 'Float64Array: its 16 bytes')
  t.ok(frames[1].payload.equals(Buffer.from(u16.buffer)), 'Uint16Array: its 4 bytes')
  t.equal(frames[2].payload.toString(), '456789', 'DataView: its window only')
  t.ok(frames[3].payload.equals(Buffer.alloc(8, 0xab)), 'offset Uint32Array: its 8 bytes')
  t.ok(frames[4].payload.equals(Buffer.from([0xef, 0xbf, 0xbd, ...Buffer.from(' lone surrogate')])), 'a lone surrogate becomes U+FFFD: valid UTF-8')
  t.equal(frames[5].payload.toString(), '{"a":[1,"two"]}')
  t.ok(frames[6].payload.equals(Buffer.alloc(124)))
  t.equal(closeCodeOf(frames[7]), 1000)
  t.equal(frames[7].payload.length, 2 + 122)
  t.equal(client.frames().length, 8)
})

t.test('writes after close: false / a callback error, never a throw or bytes on the wire', async (t) => {
  const { ws, client, close } = await tcpPair(off)
  t.teardown(close)
  const closed = once(ws, 'close')
  client.socket.destroy()
  await deadline(closed, 3000, 'close')
  const before = client.received.length
  let cbError: (Error & { code?: string }) | null | undefined
  t.equal(ws.send('late', (err) => { cbError = err }), false)
  t.doesNotThrow(() => ws.ping('late'))
  t.doesNotThrow(() => ws.pong('late'))
  t.doesNotThrow(() => ws.close(1000))
  t.doesNotThrow(() => ws.terminate())
  await ws.drained()
  t.equal(cbError?.code, 'FST_ERR_WS_NOT_OPEN')
  t.equal(client.received.length, before)
  // bad arguments are still bad arguments
  t.throws(() => ws.send(42 as never), TypeError)
  t.throws(() => ws.ping('x'.repeat(126)), RangeError, 'ping checks its payload on a closed socket too')
  t.throws(() => ws.pong(42 as never), TypeError, 'pong checks its payload on a closed socket too')
  t.throws(() => ws.close(999), RangeError, 'close checks its code on a closed socket too')
})
