// Liveness (issue 5): heartbeat from one shared timer, idleTimeout, maxLifetime and the deadline
// of an incomplete message. Every wait is on an event with a deadline, never a fixed sleep.
import t from 'tap'
import { once } from 'node:events'
import { WebSocket } from '../../lib/index.js'
import { clock } from '../../lib/connection/heartbeat.js'
import { clientFrame, closeCodeOf, deadline, rawWebSocket, server, tcpPair } from './helpers.js'
import { until } from '../plugin/helpers.js'

const off = { heartbeatInterval: 0, idleTimeout: 0, maxLifetime: 0, incompleteMessageTimeout: 0 }

t.test('heartbeat: a peer that never answers is pinged, then terminated', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, heartbeatInterval: 40 })
  t.teardown(close)
  const closed = once(ws, 'close')
  const [ping] = await client.waitFrames(1, 3000)
  t.equal(ping.opcode, 0x9, 'a Ping after heartbeatInterval of silence')
  const [code, , wasClean] = await deadline(closed, 3000, 'termination')
  t.equal(code, 1006, 'terminated without a closing handshake')
  t.equal(wasClean, false)
  t.equal(ws.expiredBy, 'heartbeat')
  await client.waitClosed()
})

t.test('heartbeat: a peer that answers every Ping stays open', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, heartbeatInterval: 150 })
  t.teardown(close)
  let pongs = 0
  ws.on('pong', () => { pongs++ })
  // answer each Ping with a Pong, as a browser does
  let answered = 0
  await client.until(() => {
    const pings = client.frames().filter((f) => f.opcode === 0x9)
    while (answered < pings.length) client.write(clientFrame(0xa, pings[answered++].payload))
    return answered >= 3
  }, 5000, 'three pings')
  await deadline(new Promise<void>((resolve) => { const c = (): void => { if (pongs >= 3) resolve(); else setImmediate(c) }; c() }), 3000, 'pongs')
  t.equal(ws.readyState, WebSocket.OPEN, 'still open after three heartbeats')
  t.equal(ws.expiredBy, null)
  ws.close(1000)
  client.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])))
  await deadline(once(ws, 'close'), 3000, 'close')
})

t.test('heartbeat: a Pong that arrived while the event loop was blocked still answers the Ping', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, heartbeatInterval: 100 })
  t.teardown(close)
  const expired = once(ws, 'close').then(() => ws.expiredBy)
  const [ping] = await client.waitFrames(1, 3000)
  t.equal(ping.opcode, 0x9)
  client.write(clientFrame(0xa, ping.payload)) // the Pong waits in the server's kernel buffer
  // a synchronous task blocks the loop for 3.5 heartbeat intervals (as a GC pause or a starved
  // process would): the clock's next tick runs before the read of the Pong
  const blockedUntil = Date.now() + 350
  while (Date.now() < blockedUntil) { /* blocked */ }
  // the peer answers the next two Pings too; the connection must outlive all three
  let answered = 1
  await Promise.race([
    client.until(() => {
      const pings = client.frames().filter((f) => f.opcode === 0x9)
      while (answered < pings.length) client.write(clientFrame(0xa, pings[answered++].payload))
      return answered >= 3
    }, 5000, 'three pings answered'),
    expired.then((by) => { throw new Error(`closed (expiredBy ${String(by)}) though the peer answered every Ping`) })
  ])
  t.equal(ws.expiredBy, null)
  t.equal(ws.readyState, WebSocket.OPEN)
  ws.close(1000)
  client.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])))
  await deadline(once(ws, 'close'), 3000, 'close')
})

t.test('one shared timer for all connections, stopped when the last one closes', async (t) => {
  // the earlier tests' connections are closed: the timer stops at its next tick
  await until(() => !clock.running, 'the clock stops', 3000)
  const before = clock.timersCreated
  t.equal(clock.running, false, 'no timer while no connection is watched')
  const pairs = await Promise.all(Array.from({ length: 20 }, () => tcpPair({ ...off, heartbeatInterval: 10_000 })))
  t.equal(clock.size, 20, 'every connection is watched')
  t.equal(clock.timersCreated - before, 1, 'by one interval timer')
  t.equal(clock.running, true)
  await Promise.all(pairs.map(async (p) => { const c = once(p.ws, 'close'); await p.close(); await c }))
  t.equal(clock.size, 0)
  // the timer stops at its first tick with nothing to watch (the resolution is 1 s here)
  await until(() => !clock.running, 'the clock stops', 3000)
  t.equal(clock.running, false, 'the timer is gone after the last connection')
})

t.test('connections opened one after another, each closed before the next, share one timer', async (t) => {
  await until(() => !clock.running, 'the clock stops', 3000)
  const before = clock.timersCreated
  for (let i = 0; i < 5; i++) {
    const pair = await tcpPair({ ...off, heartbeatInterval: 10_000 })
    t.equal(clock.size, 1, `connection ${i + 1} is watched`)
    const closed = once(pair.ws, 'close')
    await pair.close()
    await closed
    t.equal(clock.size, 0)
  }
  t.equal(clock.timersCreated - before, 1, 'one interval timer, not one per connection')
  await until(() => !clock.running, 'the clock stops', 3000)
  t.equal(clock.running, false)
})

t.test('idleTimeout: no message either way -> close 1001 "idle timeout"; pings do not count', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, idleTimeout: 60 })
  t.teardown(close)
  client.write(clientFrame(0x9, 'are you there')) // control traffic is not activity
  const frames = await client.waitFrames(2, 3000)
  t.same(frames.map((f) => f.opcode), [0xa, 0x8])
  t.equal(closeCodeOf(frames[1]), 1001)
  t.equal(frames[1].payload.subarray(2).toString(), 'idle timeout')
  t.equal(ws.expiredBy, 'idle')
  client.write(clientFrame(0x8, Buffer.from([0x03, 0xe9])))
  const [code, , wasClean] = await deadline(once(ws, 'close'), 3000, 'close')
  t.same([code, wasClean], [1001, true], 'a clean closing handshake')
})

t.test('maxLifetime: close 1001 "max lifetime" even while messages flow', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, maxLifetime: 80 })
  t.teardown(close)
  ws.on('message', (data: Buffer) => ws.send(data))
  let sent = 0
  await client.until(() => {
    const frames = client.frames()
    if (frames.some((f) => f.opcode === 0x8)) return true
    if (sent === frames.length && sent < 10_000) { client.write(clientFrame(0x1, `m${sent++}`)) }
    return false
  }, 5000, 'the Close frame')
  const closeFrame = client.frames().find((f) => f.opcode === 0x8)!
  t.equal(closeCodeOf(closeFrame), 1001)
  t.equal(closeFrame.payload.subarray(2).toString(), 'max lifetime')
  t.ok(sent > 0, `${sent} messages were exchanged meanwhile`)
  t.equal(ws.expiredBy, 'lifetime')
})

t.test('incompleteMessageTimeout: a started message that never ends -> 1008 and TCP closed', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, incompleteMessageTimeout: 60, closeTimeout: 5000 })
  t.teardown(close)
  const messages: unknown[] = []
  ws.on('message', (m) => messages.push(m))
  client.write(clientFrame(0x1, 'part one, ', { fin: false }))
  const closed = once(ws, 'close')
  await client.waitClosed(3000)
  const frames = client.frames()
  t.same(frames.map((f) => f.opcode), [0x8])
  t.equal(closeCodeOf(frames[0]), 1008)
  const [code, , wasClean] = await deadline(closed, 3000, 'close')
  t.same([code, wasClean], [1008, false])
  t.equal(ws.failure?.code, 'WS_ERR_MESSAGE_TIMEOUT')
  t.same(messages, [], 'the partial message was never delivered')
})

t.test('incompleteMessageTimeout: 1-byte continuation frames do not extend the deadline', async (t) => {
  const { ws, client, close } = await tcpPair({ ...off, incompleteMessageTimeout: 80 })
  t.teardown(close)
  client.write(clientFrame(0x2, Buffer.from([1]), { fin: false }))
  let sent = 0
  const drip = setInterval(() => { if (sent < 1000) { sent++; client.write(clientFrame(0x0, Buffer.from([2]), { fin: false })) } }, 5)
  t.teardown(() => clearInterval(drip))
  await client.waitClosed(3000)
  clearInterval(drip)
  t.equal(ws.failure?.code, 'WS_ERR_MESSAGE_TIMEOUT')
  t.equal(closeCodeOf(client.frames()[0]), 1008)
})

t.test('plugin and route options reach the connection', async (t) => {
  const { app, port, log } = await server({ idleTimeout: 50, heartbeatInterval: 0 }, (app) => {
    app.ws('/plugin', () => {})
    app.ws('/route', { idleTimeout: 0, maxLifetime: 60 }, () => {})
  })
  t.teardown(() => app.close())
  const idle = await rawWebSocket(port, '/plugin')
  const [a] = await idle.waitFrames(1, 3000)
  t.same([closeCodeOf(a), a.payload.subarray(2).toString()], [1001, 'idle timeout'], 'the plugin option applies')
  const lifetime = await rawWebSocket(port, '/route')
  const [b] = await lifetime.waitFrames(1, 3000)
  t.same([closeCodeOf(b), b.payload.subarray(2).toString()], [1001, 'max lifetime'], "the route's options win")
  idle.socket.destroy()
  lifetime.socket.destroy()
  t.same(log.errors(), [])
})
