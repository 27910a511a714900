// The Redis adapter between adapter instances on a real redis-server, each with a recording host.
import t, { type Test } from 'tap'
import { Cluster, Redis } from 'ioredis'
import { redisAdapter, RedisAdapterErrorCode, type RedisTopicAdapter } from '../../lib/redis.js'
import { RecordingHost } from './host.js'
import { redisFor, startCluster, type RedisServer } from './redis-server.js'

interface Instance { adapter: RedisTopicAdapter, host: RecordingHost }

async function instance (t: Test, server: RedisServer, options: Parameters<typeof redisAdapter>[0] = {}): Promise<Instance> {
  const adapter = redisAdapter({ url: server.url, ...options })
  const host = new RecordingHost()
  await adapter.init(host)
  t.teardown(() => adapter.close())
  return { adapter, host }
}

async function inspector (t: Test, server: RedisServer): Promise<Redis> {
  const redis = new Redis(server.url)
  t.teardown(() => { redis.disconnect() })
  return redis
}

/** A redis-server and two adapters on it. */
async function pair (t: Test, options: Parameters<typeof redisAdapter>[0] = {}): Promise<{ server: RedisServer, a: Instance, b: Instance }> {
  const server = await redisFor(t)
  return { server, a: await instance(t, server, options), b: await instance(t, server, options) }
}

const text = (topic: string, s: string) => ({ topic, payload: Buffer.from(s), binary: false })

for (const sharded of [false, true]) {
  const mode = sharded ? 'sharded (SSUBSCRIBE/SPUBLISH)' : 'plain (SUBSCRIBE/PUBLISH)'

  t.test(`${mode}: a publication reaches the other instance once, opcode and bytes kept, never its publisher`, async (t) => {
    const { server, a, b } = await pair(t, { sharded })
    await a.adapter.subscribe('room')
    await b.adapter.subscribe('room')
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0])
    a.adapter.publish(text('room', 'héllo ✓'))
    a.adapter.publish({ topic: 'room', payload: bytes, binary: true })
    await b.host.until(() => b.host.delivered.length === 2, 'b receives both')
    t.same(b.host.delivered[0], text('room', 'héllo ✓'))
    t.equal(b.host.delivered[1].binary, true)
    t.ok(b.host.delivered[1].payload.equals(bytes), 'binary payload intact')
    // b answers after it received a's messages; Redis wrote a's messages to a's subscriber
    // connection before b's, so if a had kept its own, they would come first
    b.adapter.publish(text('room', 'from b'))
    await a.host.until(() => a.host.delivered.length >= 1, 'a receives b')
    t.same(a.host.texts(), ['room:text:from b'], 'a never receives its own publications')
    t.same(b.host.texts().length, 2, 'b never receives its own publication')
    t.same(a.host.errors, [])
    // the JSON text of an object stays marked as such (each receiving hub re-serializes it)
    const json = { topic: 'room', payload: Buffer.from('{"n":1}'), binary: false, json: true }
    a.adapter.publish(json)
    await b.host.until(() => b.host.delivered.length === 3, 'b receives the JSON publication')
    t.same(b.host.delivered[2], json)
  })

  t.test(`${mode}: interest-based routing: channels held only while a local subscriber exists`, async (t) => {
    const { server, a, b } = await pair(t, { sharded })
    const redis = await inspector(t, server)
    const listing = sharded ? ['SHARDCHANNELS', 'fastify-rfc6455#t#*'] : ['CHANNELS', 'fastify-rfc6455#t#*']
    const channels = async () => ((await redis.call('PUBSUB', ...listing)) as string[]).sort()
    t.same(await channels(), [], 'no topic channel before any subscriber')
    await a.adapter.subscribe('x')
    await b.adapter.subscribe('y')
    t.same(await channels(), ['fastify-rfc6455#t#x', 'fastify-rfc6455#t#y'])
    // b has no subscriber of x: a publication to x never reaches b's connection
    a.adapter.publish(text('x', 'for x only'))
    a.adapter.publish(text('y', 'for y'))
    await b.host.until(() => b.host.delivered.length === 1, 'b receives y')
    t.same(b.host.texts(), ['y:text:for y'])
    await b.adapter.unsubscribe('y')
    t.same(await channels(), ['fastify-rfc6455#t#x'], 'the last local subscriber gone, the channel goes')
    await a.adapter.unsubscribe('x')
    t.same(await channels(), [])
  })
}

t.test('any topic string: unicode, separators and a lone surrogate reach their own subscribers', async (t) => {
  const { a, b } = await pair(t)
  const topics = ['Zürich ✓', 'a#t#b', 'x'.repeat(1024), '\uD800lone']
  for (const topic of topics) await b.adapter.subscribe(topic)
  for (const topic of topics) a.adapter.publish(text(topic, topic.slice(0, 8)))
  await b.host.until(() => b.host.delivered.length === topics.length, 'one per topic')
  t.same(b.host.delivered.map((p) => p.topic), topics, 'each arrives under the topic string it was subscribed with')
  await b.adapter.unsubscribe('\uD800lone')
  a.adapter.publish(text('\uD800lone', 'gone'))
  a.adapter.publish(text('Zürich ✓', 'last'))
  await b.host.until(() => b.host.delivered.length === topics.length + 1, 'the last one')
  t.equal(b.host.delivered.at(-1)?.topic, 'Zürich ✓', 'nothing after unsubscribing')
})

t.test('order per publisher and topic holds over a burst', async (t) => {
  const { server, a, b } = await pair(t)
  await b.adapter.subscribe('seq')
  const n = 2000
  for (let i = 0; i < n; i++) a.adapter.publish(text('seq', String(i)))
  await b.host.until(() => b.host.delivered.length === n, 'every message')
  const got = b.host.delivered.map((p) => Number(p.payload.toString()))
  t.same(got, Array.from({ length: n }, (_, i) => i), 'received in publish order')
})

t.test('presence: subscriberCount sums the local counts of every instance', async (t) => {
  const { server, a, b } = await pair(t)
  const c = await instance(t, server)
  a.host.counts.set('room', 3)
  await a.adapter.subscribe('room')
  b.host.counts.set('room', 2)
  await b.adapter.subscribe('room')
  t.equal(await c.adapter.subscriberCount('room'), 5, 'asked from an instance without subscribers')
  t.equal(await a.adapter.subscriberCount('room'), 5, 'asked from a subscribed instance')
  t.equal(await a.adapter.subscriberCount('empty'), 0, 'nobody subscribed anywhere')
  b.host.counts.delete('room')
  await b.adapter.unsubscribe('room')
  t.equal(await c.adapter.subscriberCount('room'), 3, 'b left')
})

t.test('presence in sharded mode', async (t) => {
  const { a, b } = await pair(t, { sharded: true })
  a.host.counts.set('room', 4)
  await a.adapter.subscribe('room')
  t.equal(await b.adapter.subscriberCount('room'), 4)
})

t.test('a Redis outage: local service goes on, lost forwards are counted and reported, then it resubscribes and delivers again', async (t) => {
  const { server, a, b } = await pair(t)
  await a.adapter.subscribe('room')
  await b.adapter.subscribe('room')
  a.adapter.publish(text('room', 'before'))
  await b.host.until(() => b.host.delivered.length === 1, 'delivered before the outage')

  await server.stop()
  await a.host.until(() => a.host.errors.length >= 1, 'a reports the outage')
  t.match(a.host.errors[0], { code: RedisAdapterErrorCode.Unavailable, recovered: false })
  for (let i = 0; i < 5; i++) t.doesNotThrow(() => a.adapter.publish(text('room', `lost ${i}`)))
  await t.rejects(a.adapter.subscriberCount('room'), { code: RedisAdapterErrorCode.Unavailable })
  // a topic wanted during the outage is subscribed when Redis is back
  await a.adapter.subscribe('later')
  await b.adapter.subscribe('later')

  await server.start()
  const recovered = (h: RecordingHost) => h.errors.some((e) => e.recovered === true)
  await a.host.until(() => recovered(a.host), 'a recovers')
  await b.host.until(() => recovered(b.host), 'b recovers')
  // each lost publication is reported once: counted into the recovery report when the publisher
  // connection already knew Redis was gone, or refused one by one when its commands were sent
  // before it noticed (ioredis sees the outage per connection, in either order)
  const reports = JSON.stringify(a.host.errors.map((e) => [e.code, e.recovered, e.unforwarded, e.message]))
  t.match(a.host.errors.find((e) => e.recovered === true), { code: RedisAdapterErrorCode.Unavailable }, reports)
  t.ok(a.host.errors.every((e) => e.code === RedisAdapterErrorCode.Unavailable), `every report is WS_ERR_ADAPTER_UNAVAILABLE: ${reports}`)
  t.equal(a.host.errors.reduce((sum, e) => sum + (e.unforwarded ?? 0), 0), 5, `the reports account for the 5 lost publications, each once: ${reports}`)
  a.adapter.publish(text('room', 'after'))
  a.adapter.publish(text('later', 'new topic'))
  await b.host.until(() => b.host.delivered.length === 3, 'delivered after the restart')
  t.same(b.host.texts(), ['room:text:before', 'room:text:after', 'later:text:new topic'], 'nothing from the outage arrives late, nothing twice')
  t.equal(a.adapter.stats.unforwarded, 5, 'each publication that could not be forwarded is counted')
  t.equal(a.adapter.stats.outages, 1)
})

t.test('Redis alive but not answering: what awaits its answer is bounded by maxPendingBytes, the rest is counted and reported', async (t) => {
  const server = await redisFor(t)
  const a = await instance(t, server, { maxPendingBytes: 1024 * 1024 })
  const b = await instance(t, server)
  await b.adapter.subscribe('room')
  server.pause()
  t.teardown(() => server.resume())
  const payload = Buffer.alloc(64 * 1024, 1)
  // 1 MiB holds 15 envelopes of 64 KiB + 18 bytes: the 16th and later are not forwarded
  for (let i = 0; i < 40; i++) a.adapter.publish({ topic: 'room', payload: Buffer.concat([Buffer.from([i]), payload]), binary: true })
  t.equal(a.adapter.stats.unforwarded, 25, 'past the bound, publications are counted, not queued')
  t.match(a.host.errors, [{ code: RedisAdapterErrorCode.Overloaded, recovered: false }], 'reported once')
  server.resume()
  await a.host.until(() => a.host.errors.some((e) => e.recovered === true), 'the backlog drains')
  t.match(a.host.errors.at(-1), { code: RedisAdapterErrorCode.Overloaded, recovered: true, unforwarded: 25 })
  a.adapter.publish(text('room', 'after'))
  await b.host.until(() => b.host.delivered.length === 16, 'the forwarded ones and the next')
  t.same(b.host.delivered.slice(0, 15).map((p) => p.payload[0]), Array.from({ length: 15 }, (_, i) => i), 'the first 15, in order')
  t.same(b.host.texts().at(-1), 'room:text:after')
})

t.test('an instance started while Redis is down serves locally and joins when Redis comes', async (t) => {
  const server = await redisFor(t)
  await server.stop()
  const a = await instance(t, server)
  t.match(a.host.errors[0], { code: RedisAdapterErrorCode.Unavailable })
  await a.adapter.subscribe('room')
  a.adapter.publish(text('room', 'nobody else yet'))
  t.equal(a.adapter.stats.unforwarded, 1)
  await server.start()
  await a.host.until(() => a.host.errors.some((e) => e.recovered === true), 'a connects')
  const b = await instance(t, server)
  await b.adapter.subscribe('room')
  b.adapter.publish(text('room', 'hi a'))
  await a.host.until(() => a.host.delivered.length === 1, 'a receives')
  t.same(a.host.texts(), ['room:text:hi a'])
})

t.test('a foreign message on a topic channel is reported and ignored', async (t) => {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const a = await instance(t, server)
  const b = await instance(t, server)
  await b.adapter.subscribe('room')
  await redis.publish(b.adapter.channelOf('room'), 'not an envelope')
  await redis.publish(b.adapter.channelOf('room'), Buffer.from([1, 9, ...Buffer.alloc(16)]))
  a.adapter.publish(text('room', 'still fine'))
  await b.host.until(() => b.host.delivered.length === 1, 'the next real message')
  t.same(b.host.texts(), ['room:text:still fine'])
  t.same(b.host.errors.map((e) => e.code), [RedisAdapterErrorCode.Message, RedisAdapterErrorCode.Message])
  t.equal(b.adapter.stats.malformed, 2)
})

t.test('presence times out with a coded error when an instance does not answer', async (t) => {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const silent = redis.duplicate()
  t.teardown(() => { silent.disconnect() })
  const a = await instance(t, server, { presenceTimeout: 50 })
  // a connection subscribed to the topic that is not an adapter: counted by Redis, never answers
  await silent.subscribe(a.adapter.channelOf('room'))
  await t.rejects(a.adapter.subscriberCount('room'), { code: RedisAdapterErrorCode.PresenceTimeout })
})

t.test('options are checked at the call, with coded errors', async (t) => {
  const bad: unknown[] = [
    { url: 'http://x' }, { prefix: '' }, { sharded: 'yes' }, { presenceTimeout: 0 }, { presenceTimeout: 1.5 }, { maxPendingBytes: -1 },
    { bogus: 1 }, { client: 'redis' }, null
  ]
  for (const options of bad) {
    t.throws(() => redisAdapter(options as never), { code: RedisAdapterErrorCode.Option }, JSON.stringify(options))
  }
  const template = new Redis({ lazyConnect: true })
  t.throws(() => redisAdapter({ url: 'redis://127.0.0.1:1', client: template }), { code: RedisAdapterErrorCode.Option })
  template.disconnect()
})

t.test('a client instance is a template: the adapter opens its own connections from it', async (t) => {
  const server = await redisFor(t)
  const template = new Redis(server.url, { lazyConnect: true, enableOfflineQueue: true })
  t.teardown(() => { template.disconnect() })
  const a = redisAdapter({ client: template, prefix: 'app1' })
  const host = new RecordingHost()
  await a.init(host)
  t.teardown(() => a.close())
  t.equal(template.status, 'wait', 'the template itself never connects')
  await t.rejects(Promise.resolve().then(() => a.init(new RecordingHost())), { code: RedisAdapterErrorCode.InUse })
  const b = await instance(t, server, { prefix: 'app1' })
  const other = await instance(t, server, { prefix: 'app2' })
  await a.subscribe('room')
  await other.adapter.subscribe('room')
  b.adapter.publish(text('room', 'app1 only'))
  await host.until(() => host.delivered.length === 1, 'same prefix receives')
  other.adapter.publish(text('room', 'app2'))
  b.adapter.publish(text('room', 'again'))
  await host.until(() => host.delivered.length === 2, 'second')
  t.same(host.texts(), ['room:text:app1 only', 'room:text:again'], 'another prefix is another namespace')
})

t.test('a Redis Cluster of three primaries with sharded pub/sub: delivery, channels on their shards, presence', async (t) => {
  const cluster = await startCluster(3)
  t.teardown(() => cluster.stop())
  const startupNodes = [{ host: '127.0.0.1', port: cluster.nodes[0].port }]
  const template = new Cluster(startupNodes, { lazyConnect: true })
  t.teardown(() => { template.disconnect() })
  const make = async (): Promise<Instance> => {
    const adapter = redisAdapter({ client: template, sharded: true })
    const host = new RecordingHost()
    await adapter.init(host)
    t.teardown(() => adapter.close())
    return { adapter, host }
  }
  const a = await make()
  const b = await make()
  // topics whose channels hash to different slots, so to different primaries
  const topics = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta']
  for (const topic of topics) {
    await a.adapter.subscribe(topic)
    await b.adapter.subscribe(topic)
  }
  for (const topic of topics) a.adapter.publish(text(topic, `to ${topic}`))
  await b.host.until(() => b.host.delivered.length === topics.length, 'b receives every topic')
  t.same(b.host.texts().sort(), topics.map((topic) => `${topic}:text:to ${topic}`).sort())
  const perNode = await Promise.all(cluster.nodes.map(async (node) => {
    const redis = new Redis(node.port, '127.0.0.1')
    try {
      return (await redis.call('PUBSUB', 'SHARDCHANNELS', 'fastify-rfc6455#t#*')) as string[]
    } finally {
      redis.disconnect()
    }
  }))
  t.same(perNode.flat().sort(), topics.map((topic) => `fastify-rfc6455#t#${topic}`).sort(), 'each topic channel held once, on the primary of its slot')
  t.ok(perNode.filter((channels) => channels.length > 0).length > 1, 'the channels are spread over several primaries')
  a.host.counts.set('gamma', 2)
  b.host.counts.set('gamma', 5)
  t.equal(await a.adapter.subscriberCount('gamma'), 7, 'presence across the cluster')
  t.same(a.host.delivered, [], 'a never receives its own publications')
})
