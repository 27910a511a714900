// Several Fastify instances in separate processes sharing one real redis-server, with real
// WebSocket clients (ws) on each: delivery across instances, a Redis crash and restart, a slow
// subscriber, and churn checked against Redis's own channel list.
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { WebSocket as WsClient } from 'ws'
import { Client } from './client.js'
import { IpcChild } from './ipc-child.js'
import { redisFor, type RedisServer } from './redis-server.js'

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url))

// fifteen child processes in all (three per test): 47 s alone on Node 20 in a loaded CI, and past
// the suite's 120 s per file on a machine shared with other workers. The deadlines inside (a
// child's readiness, each settle and each wait) still bound every step.
t.setTimeout(600_000)

async function redisAndInspector (t: Test): Promise<{ server: RedisServer, inspect: Redis }> {
  const server = await redisFor(t)
  const inspect = new Redis(server.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true })
  inspect.on('error', () => {})
  await inspect.connect()
  t.teardown(() => { inspect.disconnect() })
  return { server, inspect }
}

async function instances (t: Test, n: number, env: NodeJS.ProcessEnv): Promise<Array<{ child: IpcChild, port: number }>> {
  const started = await Promise.all(Array.from({ length: n }, (_, i) => IpcChild.start(INSTANCE, { name: `instance ${i}`, env })))
  t.teardown(() => Promise.all(started.map((c) => c.kill())))
  return started.map((child) => ({ child, port: Number(child.ready.port) }))
}

/** Wait until each instance holds exactly the sockets of `clients` and Redis has answered. */
async function settle (all: Array<{ child: IpcChild }>, clients: Client[][]): Promise<void> {
  await Promise.all(all.map(({ child }, i) => {
    const expect: Record<string, number> = {}
    for (const c of clients[i]) if (c.ws.readyState === WsClient.OPEN) expect[c.topic] = (expect[c.topic] ?? 0) + 1
    return child.request('settle', { expect })
  }))
}

t.test('three instances: each publication reaches every other subscriber once, opcode and payload kept, never the sender nor another topic', async (t) => {
  const { server } = await redisAndInspector(t)
  const all = await instances(t, 3, { REDIS_URL: server.url })
  const news = [
    [await Client.open(t, all[0].port, 'news'), await Client.open(t, all[0].port, 'news')],
    [await Client.open(t, all[1].port, 'news'), await Client.open(t, all[1].port, 'news')],
    [await Client.open(t, all[2].port, 'news'), await Client.open(t, all[2].port, 'news')]
  ]
  const sport0 = await Client.open(t, all[0].port, 'sport')
  const sport2 = await Client.open(t, all[2].port, 'sport')
  await settle(all, [[...news[0], sport0], news[1], [...news[2], sport2]])

  const [sender] = news[0]
  sender.ws.send('héllo ✓')
  sender.ws.send(Buffer.from([0, 1, 0xfe, 0xff]))
  const others = news.flat().filter((c) => c !== sender)
  await Promise.all(others.map((c) => c.until(2)))
  sport0.ws.send('goal')
  await sport2.until(1)
  // a second publisher answers after it received everything: its message comes last everywhere
  const last = news[1][0]
  last.ws.send('end')
  await Promise.all(news.flat().filter((c) => c !== last).map((c) => c.until(c === sender ? 1 : 3)))
  for (const c of others) {
    t.same(c.texts(), c === last ? ['héllo ✓', 'bin:0001feff'] : ['héllo ✓', 'bin:0001feff', 'end'], 'once each, in order, text stays text and binary binary')
  }
  t.same(sender.texts(), ['end'], 'the publisher never receives its own publications')
  t.same(sport2.texts(), ['goal'], 'another topic receives nothing of news')
  t.same(sport0.texts(), [], 'nor its own publication')
})

t.test('Redis killed and restarted mid-run: local subscribers keep being served, the outage is reported, delivery resumes', async (t) => {
  const { server } = await redisAndInspector(t)
  const [a, b] = await instances(t, 2, { REDIS_URL: server.url })
  const a1 = await Client.open(t, a.port, 'room')
  const a2 = await Client.open(t, a.port, 'room')
  const b1 = await Client.open(t, b.port, 'room')
  await settle([a, b], [[a1, a2], [b1]])
  a1.ws.send('before')
  await b1.until(1)

  const reportedA = a.child.waitFor((m) => m.type === 'adapter-error' && m.recovered === false, 'a reports the outage')
  const reportedB = b.child.waitFor((m) => m.type === 'adapter-error' && m.recovered === false, 'b reports the outage')
  await server.stop()
  t.match(await reportedA, { code: 'WS_ERR_ADAPTER_UNAVAILABLE' })
  await reportedB
  a1.ws.send('during')
  await a2.until(2, 'the local subscriber still served')

  const recoveredA = a.child.waitFor((m) => m.type === 'adapter-error' && m.recovered === true, 'a recovers', 30_000)
  const recoveredB = b.child.waitFor((m) => m.type === 'adapter-error' && m.recovered === true, 'b recovers', 30_000)
  await server.start()
  t.match(await recoveredA, { code: 'WS_ERR_ADAPTER_UNAVAILABLE', unforwarded: 1 }, 'the publication that could not be forwarded is counted')
  await recoveredB
  a1.ws.send('after')
  await b1.until(2)
  t.same(b1.texts(), ['before', 'after'], 'at most once across the outage: the lost publication never arrives late')
  t.same(a2.texts(), ['before', 'during', 'after'])
  t.match(await a.child.request('stats'), { unforwarded: 1, outages: 1 })
})

t.test('a slow subscriber is closed by its maxBufferedAmount policy and never slows the others', async (t) => {
  const { server } = await redisAndInspector(t)
  const [a] = await instances(t, 1, { REDIS_URL: server.url })
  const [b] = await instances(t, 1, { REDIS_URL: server.url, MAX_BUFFERED: String(256 * 1024) })
  const publisher = await Client.open(t, a.port, 'feed')
  const fast = await Client.open(t, b.port, 'feed')
  const slow = await Client.open(t, b.port, 'feed')
  await settle([a, b], [[publisher], [fast, slow]])
  // the slow client stops reading: once the kernel's buffers are full, what b sends it waits in
  // b's process (bufferedAmount) until it passes maxBufferedAmount
  ;(slow.ws as unknown as { _socket: { pause (): void } })._socket.pause()
  // each round (128 KiB) stays under the limit even when it reaches b in one tick, so the fast
  // subscriber, which reads everything, is never over it
  const chunk = Buffer.alloc(16 * 1024, 7)
  let sent = 0
  let remaining = 2
  for (let round = 0; round < 400 && remaining === 2; round++) {
    for (let i = 0; i < 8; i++) {
      chunk.writeUInt32BE(sent++, 0)
      publisher.ws.send(chunk)
    }
    await fast.until(sent, `round ${round}`)
    remaining = Number((await b.child.request('count', { topic: 'feed' })).count)
  }
  t.equal(remaining, 1, 'the slow subscriber was closed')
  t.same(fast.received.map((r) => Buffer.from(r.text, 'hex').readUInt32BE(0)), Array.from({ length: sent }, (_, i) => i), 'the fast subscriber got everything, in order')
})

for (const sharded of [false, true]) {
  t.test(`churn of subscribers on three instances: Redis holds exactly the live topics (${sharded ? 'SSUBSCRIBE' : 'SUBSCRIBE'})`, async (t) => {
    const { server, inspect } = await redisAndInspector(t)
    const all = await instances(t, 3, { REDIS_URL: server.url, SHARDED: sharded ? '1' : '0' })
    const clients: Client[][] = [[], [], []]
    let seed = 12345
    const random = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
    const channelsOf = async (): Promise<string[]> => ((await inspect.call('PUBSUB', sharded ? 'SHARDCHANNELS' : 'CHANNELS', 'fastify-rfc6455#t#*')) as string[]).sort()
    for (let round = 0; round < 12; round++) {
      const opened: Array<Promise<void>> = []
      for (let k = 0; k < 6; k++) {
        const i = random(3)
        const topic = `t${random(8)}`
        opened.push(Client.open(t, all[i].port, topic).then((c) => { clients[i].push(c) }))
      }
      await Promise.all(opened)
      for (let k = 0; k < 4; k++) {
        const i = random(3)
        if (clients[i].length === 0) continue
        const [gone] = clients[i].splice(random(clients[i].length), 1)
        await gone.close()
      }
      await settle(all, clients)
      const live = [...new Set(clients.flat().map((c) => `fastify-rfc6455#t#${c.topic}`))].sort()
      t.same(await channelsOf(), live, `round ${round}: the channels are the live topics`)
      if (!sharded) {
        // one subscription per instance that has the topic, whatever its number of sockets
        const numsub = (await inspect.call('PUBSUB', 'NUMSUB', ...live)) as Array<string | number>
        const expected = live.flatMap((ch) => [ch, clients.filter((cs) => cs.some((c) => `fastify-rfc6455#t#${c.topic}` === ch)).length])
        t.same(numsub.map((v, i) => (i % 2 === 1 ? Number(v) : v)), expected, `round ${round}: one subscription per interested instance`)
      }
    }
    for (const list of clients) for (const c of list.splice(0)) await c.close()
    await settle(all, clients)
    t.same(await channelsOf(), [], 'no subscriber left: no channel left')
  })
}

t.test('presence across instances', async (t) => {
  const { server } = await redisAndInspector(t)
  const all = await instances(t, 3, { REDIS_URL: server.url })
  const clients = [
    [await Client.open(t, all[0].port, 'lobby'), await Client.open(t, all[0].port, 'lobby')],
    [await Client.open(t, all[1].port, 'lobby')],
    []
  ]
  await settle(all, clients)
  t.match(await all[2].child.request('presence', { topic: 'lobby' }), { count: 3 })
  t.match(await all[0].child.request('presence', { topic: 'lobby' }), { count: 3 })
  await clients[0][0].close()
  clients[0].shift()
  await settle(all, clients)
  t.match(await all[1].child.request('presence', { topic: 'lobby' }), { count: 2 })
})
