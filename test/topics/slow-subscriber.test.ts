// A slow subscriber meets its own maxBufferedAmount policy; it never slows the others.
import t from 'tap'
import { TopicHub, WebSocket } from '../../lib/index.js'
import { deadline, StalledDuplex, tcpPair } from '../hostile/helpers.js'

const off = { heartbeatInterval: 0, incompleteMessageTimeout: 0 }

for (const policy of ['close', 'drop'] as const) {
  t.test(`policy '${policy}': the peer that does not read is ${policy === 'close' ? 'closed (1008)' : 'spared what does not fit'}; the others get everything`, async (t) => {
    const hub = new TopicHub()
    await hub.init()
    const stalled = new StalledDuplex()
    const slow = new WebSocket(stalled, { ...off, topics: hub, maxBufferedAmount: 4096, bufferedAmountPolicy: policy })
    const fast = await Promise.all([tcpPair({ ...off, topics: hub }), tcpPair({ ...off, topics: hub })])
    t.teardown(async () => { slow.terminate(); await Promise.all(fast.map((p) => p.close())) })
    slow.subscribe('ticker')
    for (const p of fast) p.ws.subscribe('ticker')
    let dropped = 0
    slow.on('dropped', () => { dropped++ })
    const accepted: number[] = []
    // 10 ticks of 10 publications of 202-byte frames: 20 KB, five times what the slow peer may hold
    for (let tick = 0; tick < 10; tick++) {
      for (let i = 0; i < 10; i++) accepted.push(hub.publish('ticker', Buffer.alloc(200, tick * 10 + i)))
      await new Promise((resolve) => setImmediate(resolve))
    }
    for (const p of fast) await deadline(p.client.waitFrames(100), 5000, '100 frames')
    for (const p of fast) {
      t.same(p.client.frames().map((f) => f.payload[0]), Array.from({ length: 100 }, (_, i) => i), 'every publication, in order')
    }
    t.ok(slow.bufferedAmount <= 4096 + 1024, `the slow peer holds at most its limit (${slow.bufferedAmount} bytes)`)
    if (policy === 'close') {
      t.equal(slow.readyState, WebSocket.CLOSING, 'the slow peer is being closed')
      t.ok(accepted.every((n) => n >= 2), 'the fast subscribers accepted every publication')
      t.equal(accepted.at(-1), 2, 'the closing peer accepts nothing more')
    } else {
      t.equal(slow.readyState, WebSocket.OPEN, 'the slow peer stays open')
      t.ok(dropped > 0 && slow.droppedMessages === dropped, `what did not fit was dropped and reported (${dropped})`)
    }
    stalled.release()
  })
}
