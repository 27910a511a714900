// The Redis history store (lib/topics/redis-history.ts) on a real redis-server: offsets,
// atomicity across connections, trimming, epochs, and the gap fill after a lost connection.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import websocket from '../../lib/index.js'
import { redisAdapter, type RedisTopicAdapter } from '../../lib/redis.js'
import type { RedisHistoryOptions, RedisTopicHistory } from '../../lib/topics/redis-history.js'
import { RecordingHost } from './host.js'
import { HistoryRecorder } from './history-host.js'
import { askUntil, redisFor, type RedisServer } from './redis-server.js'

interface Instance { adapter: RedisTopicAdapter, store: RedisTopicHistory, host: HistoryRecorder, adapterHost: RecordingHost }

const HISTORY: RedisHistoryOptions = { maxMessages: 100, maxAge: 300_000 }

async function instance (t: Test, server: RedisServer, { history = HISTORY, name, prefix, sharded = false, maxPendingBytes }: { history?: RedisHistoryOptions, name?: string, prefix?: string, sharded?: boolean, maxPendingBytes?: number } = {}): Promise<Instance> {
  const adapter = redisAdapter({ url: server.url, sharded, ...(maxPendingBytes === undefined ? {} : { maxPendingBytes }), ...(prefix === undefined ? {} : { prefix }), ...(name === undefined ? {} : { client: { connectionName: name } }) })
  const store = adapter.history(history)
  const host = new HistoryRecorder()
  const adapterHost = new RecordingHost()
  store.init(host)
  await adapter.init(adapterHost)
  t.teardown(async () => { await store.close(); await adapter.close() })
  return { adapter, store, host, adapterHost }
}

async function inspector (t: Test, server: RedisServer): Promise<Redis> {
  const redis = new Redis(server.url)
  t.teardown(() => { redis.disconnect() })
  return redis
}

/** Redis's clock in ms. */
async function redisNow (redis: Redis): Promise<number> {
  const [s, us] = await redis.time()
  return Number(s) * 1000 + Math.floor(Number(us) / 1000)
}

/** A redis-server, an inspecting connection, and two instances both subscribed to `topic`. */
async function pairOn (t: Test, topic: string, options: { sharded?: boolean } = {}): Promise<{ server: RedisServer, redis: Redis, a: Instance, b: Instance }> {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const a = await instance(t, server, options)
  const b = await instance(t, server, options)
  await a.adapter.subscribe(topic)
  await b.adapter.subscribe(topic)
  return { server, redis, a, b }
}

t.test('offsets start at 1 and grow by one; every instance, the publisher too, delivers each once in order; read() gives what follows a position', async (t) => {
  const { redis, a, b } = await pairOn(t, 'news')
  const start = await a.store.position('news')
  t.equal(start.offset, 0, 'a new stream is at offset 0')
  t.ok(start.epoch.length > 0 && start.epoch.length <= 64)
  t.same(await b.store.position('news'), start, 'both instances see the same stream')
  const texts = ['"one"', '{"n":2}', '[3]', '"é ✓ \\" \\n"', 'null']
  for (const data of texts) a.store.append('news', data)
  for (const { host } of [a, b]) await host.until(() => host.delivered.length === 5, 'five deliveries')
  const expected = texts.map((data, i) => `${start.epoch}:${i + 1}:${data}`)
  t.same(a.host.of('news'), expected, 'the publisher delivers from pub/sub too')
  t.same(b.host.of('news'), expected)
  t.same(await a.store.position('news'), { epoch: start.epoch, offset: 5 })
  t.same(await b.store.read('news', { epoch: start.epoch, offset: 2 }), { ok: true, epoch: start.epoch, offset: 5, entries: texts.slice(2).map((data, i) => ({ offset: i + 3, data })) })
  t.same(await b.store.read('news', { epoch: start.epoch, offset: 5 }), { ok: true, epoch: start.epoch, offset: 5, entries: [] }, 'nothing missed')
  t.match(await b.store.read('news', { epoch: start.epoch, offset: 6 }), { ok: false, reason: 'epoch' }, 'a position beyond the stream is not of this stream')
  t.match(await b.store.read('news', { epoch: 'another', offset: 1 }), { ok: false, reason: 'epoch', epoch: start.epoch, offset: 5 })
  t.same(await redis.xlen('fastify-rfc6455#h#news'), 5)
  const streamTtl = await redis.pttl('fastify-rfc6455#h#news')
  t.ok(streamTtl > 0 && streamTtl <= HISTORY.maxAge, 'the stream expires maxAge after the last publication')
  t.ok(await redis.pttl('fastify-rfc6455#p#news') > HISTORY.maxAge, 'the position outlives it')
  t.same(a.host.errors, [])
  t.same(b.host.errors, [])
})

for (const sharded of [false, true]) {
  t.test(`two publishers on two connections at once: every offset given once, each publisher's order kept, one order everywhere (${sharded ? 'SPUBLISH' : 'PUBLISH'})`, async (t) => {
    const { a, b } = await pairOn(t, 'race', { sharded })
    const { epoch } = await a.store.position('race')
    const n = 300
    for (let i = 0; i < n; i++) {
      a.store.append('race', `"a${i}"`)
      b.store.append('race', `"b${i}"`)
    }
    for (const { host } of [a, b]) await host.until(() => host.delivered.length === 2 * n, 'every publication delivered')
    t.same(a.host.offsets('race'), Array.from({ length: 2 * n }, (_, i) => i + 1), 'offsets 1..2n, each once, in order')
    t.same(b.host.of('race'), a.host.of('race'), 'both instances deliver the same sequence')
    t.ok(a.host.delivered.every((p) => p.epoch === epoch))
    const data = a.host.delivered.map((p) => JSON.parse(p.data) as string)
    t.same(data.filter((d) => d.startsWith('a')), Array.from({ length: n }, (_, i) => `a${i}`), 'a\'s publications in a\'s order')
    t.same(data.filter((d) => d.startsWith('b')), Array.from({ length: n }, (_, i) => `b${i}`), 'b\'s publications in b\'s order')
  })
}

t.test('trimming by count: maxMessages kept; a resume from before them is too old', async (t) => {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const a = await instance(t, server, { history: { maxMessages: 10, maxAge: 300_000 } })
  await a.adapter.subscribe('feed')
  for (let i = 1; i <= 25; i++) a.store.append('feed', String(i))
  await a.host.until(() => a.host.delivered.length === 25, 'every publication delivered')
  t.equal(await redis.xlen('fastify-rfc6455#h#feed'), 10)
  const { epoch } = await a.store.position('feed')
  const read = await a.store.read('feed', { epoch, offset: 15 })
  t.same(read, { ok: true, epoch, offset: 25, entries: Array.from({ length: 10 }, (_, i) => ({ offset: 16 + i, data: String(16 + i) })) }, 'the oldest kept one follows the position')
  t.same(await a.store.read('feed', { epoch, offset: 14 }), { ok: false, reason: 'too-old', epoch, offset: 25 }, 'publication 15 is gone')
  t.same(await a.store.read('feed', { epoch, offset: 0 }), { ok: false, reason: 'too-old', epoch, offset: 25 })
})

t.test('trimming by age: publications older than maxAge are not replayed, and the next append removes them', async (t) => {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const maxAge = 200
  const a = await instance(t, server, { history: { maxMessages: 100, maxAge } })
  await a.adapter.subscribe('old')
  for (let i = 1; i <= 3; i++) a.store.append('old', String(i))
  await a.host.until(() => a.host.delivered.length === 3, 'three delivered')
  // the stream's own expiry would remove everything at once: take it off to see the trimming
  await redis.persist('fastify-rfc6455#h#old')
  const [[, fields]] = await redis.xrevrange('fastify-rfc6455#h#old', '+', '-', 'COUNT', 1)
  const appended = Number(fields[1])
  await askUntil(async () => await redisNow(redis) > appended + maxAge, 'Redis\'s clock passes the age of the last entry')
  const { epoch } = await a.store.position('old')
  t.same(await a.store.read('old', { epoch, offset: 1 }), { ok: false, reason: 'too-old', epoch, offset: 3 }, 'aged publications are not replayed')
  t.same(await a.store.read('old', { epoch, offset: 3 }), { ok: true, epoch, offset: 3, entries: [] }, 'a subscriber that missed nothing recovers')
  a.store.append('old', '4')
  await a.host.until(() => a.host.delivered.length === 4, 'the fourth delivered')
  t.same((await redis.xrange('fastify-rfc6455#h#old', '-', '+')).map(([id]) => id), ['0-4'], 'the append trimmed the aged entries')
  t.ok(await redis.pttl('fastify-rfc6455#h#old') > 0, 'the stream expires again')
  t.same(await a.store.read('old', { epoch, offset: 3 }), { ok: true, epoch, offset: 4, entries: [{ offset: 4, data: '4' }] })
})

t.test('maxAge Infinity: no age limit, no expiry of the keys', async (t) => {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const a = await instance(t, server, { history: { maxMessages: 3, maxAge: Infinity } })
  await a.adapter.subscribe('forever')
  for (let i = 1; i <= 5; i++) a.store.append('forever', String(i))
  await a.host.until(() => a.host.delivered.length === 5, 'five delivered')
  t.equal(await redis.pttl('fastify-rfc6455#h#forever'), -1, 'the stream does not expire')
  t.equal(await redis.pttl('fastify-rfc6455#p#forever'), -1, 'nor the position')
  const { epoch } = await a.store.position('forever')
  t.same(await a.store.read('forever', { epoch, offset: 2 }), { ok: true, epoch, offset: 5, entries: [3, 4, 5].map((n) => ({ offset: n, data: String(n) })) })
  t.same(a.host.errors, [])
})

t.test('FLUSHALL: a new epoch; the old position is refused with reason epoch; the new stream starts at 1 and is delivered', async (t) => {
  const { redis, a, b } = await pairOn(t, 'room')
  for (let i = 1; i <= 3; i++) a.store.append('room', String(i))
  for (const { host } of [a, b]) await host.until(() => host.delivered.length === 3, 'three delivered')
  const before = await a.store.position('room')
  await redis.flushall()
  const refused = await b.store.read('room', before)
  t.equal(refused.ok, false)
  t.match(refused, { reason: 'epoch', offset: 0 })
  t.not(refused.epoch, before.epoch, 'a new epoch')
  a.store.append('room', '"after"')
  for (const { host } of [a, b]) await host.until(() => host.delivered.length === 4, 'the publication after the flush delivered')
  t.same(b.host.of('room').slice(3), [`${refused.epoch}:1:"after"`], 'the new stream starts at offset 1 under the epoch read() announced')
  t.same(a.host.of('room'), b.host.of('room'))
  t.same(await a.store.position('room'), { epoch: refused.epoch, offset: 1 }, 'the delivered position follows the new stream')
})

t.test('the keys expire: a new epoch', async (t) => {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const a = await instance(t, server, { history: { maxMessages: 100, maxAge: 50, positionTtl: 100 } })
  a.store.append('gone', '1')
  a.store.append('gone', '2')
  // nobody subscribed: the position comes from Redis
  await askUntil(async () => (await a.store.position('gone')).offset === 2, 'both appended')
  const before = await a.store.position('gone')
  await askUntil(async () => await redis.exists('fastify-rfc6455#p#gone', 'fastify-rfc6455#h#gone') === 0, 'Redis expires both keys')
  const read = await a.store.read('gone', before)
  t.match(read, { ok: false, reason: 'epoch', offset: 0 })
  t.not(read.epoch, before.epoch)
})

async function killSubscriber (t: Test, maxMessages: number): Promise<{ sent: number, b: Instance }> {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const history = { maxMessages, maxAge: 300_000 }
  const a = await instance(t, server, { name: 'publisher', history })
  const b = await instance(t, server, { name: 'victim', history })
  await b.adapter.subscribe('live')
  let sent = 0
  const publish = (count: number): void => { for (let i = 0; i < count; i++) a.store.append('live', String(++sent)) }
  publish(20)
  await b.host.until(() => b.host.delivered.length === 20, 'the first twenty')
  const clients = String(await redis.client('LIST')).split('\n').filter((line) => line.includes(' name=victim ') && / flags=P /.test(line))
  t.equal(clients.length, 1, 'one subscriber connection of b')
  const id = /\bid=(\d+)/.exec(clients[0])?.[1] as string
  const outage = b.adapterHost.until(() => b.adapterHost.errors.some((e) => e.recovered === false), 'b sees its connection lost')
  await redis.client('KILL', 'ID', id)
  await outage
  // published while b's subscriber connection is away: pub/sub never brings these to b
  publish(30)
  const recovered = b.adapterHost.until(() => b.adapterHost.errors.some((e) => e.recovered === true), 'b is back')
  // and more while b reconnects and reads
  for (let round = 0; round < 20; round++) {
    publish(5)
    await new Promise((resolve) => setImmediate(resolve))
  }
  await recovered
  publish(10)
  await b.host.until(() => b.host.offsets('live').at(-1) === sent, 'the last one delivered')
  return { sent, b }
}

t.test('the subscriber connection killed (CLIENT KILL) while publications continue: the gap is filled from the stream, nothing twice, nothing missing', async (t) => {
  // the stream holds more than this test publishes: nothing is trimmed before the fill
  const { sent, b } = await killSubscriber(t, 1000)
  t.same(b.host.offsets('live'), Array.from({ length: sent }, (_, i) => i + 1), 'every offset once, in order')
  t.same(b.host.delivered.map((p) => p.data), Array.from({ length: sent }, (_, i) => String(i + 1)))
  t.same(b.host.errors, [], 'nothing was lost: the stream held every missed publication')
})

t.test('the subscriber connection killed while more is published than the stream keeps: the trimmed ones are reported lost, the rest delivered in order once', async (t) => {
  const { sent, b } = await killSubscriber(t, 10)
  const offsets = b.host.offsets('live')
  t.ok(offsets.every((o, i) => i === 0 || o > offsets[i - 1]), 'increasing: nothing twice, nothing out of order')
  t.same(offsets.slice(0, 20), Array.from({ length: 20 }, (_, i) => i + 1))
  t.ok(offsets.length < sent, 'some were trimmed before b could read them')
  const lost = b.host.errors.reduce((sum, e) => sum + Number((e as { unforwarded?: number }).unforwarded), 0)
  t.equal(lost, sent - offsets.length, 'every lost publication is counted')
  t.match(b.host.errors[0], { code: 'WS_ERR_ADAPTER_UNAVAILABLE', recovered: false })
})

t.test('Redis killed and restarted: appends meanwhile are reported and counted once each, not kept; after the restart a new epoch from offset 1 (EVAL: the new server has no script)', async (t) => {
  const server = await redisFor(t)
  const a = await instance(t, server)
  await a.adapter.subscribe('o')
  a.store.append('o', '1')
  await a.host.until(() => a.host.delivered.length === 1, 'delivered')
  const before = a.host.delivered[0].epoch
  const down = a.adapterHost.until(() => a.adapterHost.errors.some((e) => e.recovered === false), 'the outage seen')
  await server.stop()
  await down
  for (let i = 0; i < 3; i++) a.store.append('o', '"lost"')
  // Either the publisher connection noticed the outage first (the appends are counted, reported
  // once now and with their count once Redis is back), or some were sent before it did and each
  // fails on its own (reported with unforwarded: 1): under load both happen. Either way every
  // report says unavailable, and the reports account for the 3 lost appends once each.
  await a.host.until(() => a.host.errors.length > 0, 'the loss reported')
  t.same(a.host.errors.map((e) => [e.code, (e as { recovered?: boolean }).recovered]), a.host.errors.map(() => ['WS_ERR_ADAPTER_UNAVAILABLE', false]), 'reported as lost')
  const accounted = (): number => a.host.errors.reduce((sum, e) => sum + Number((e as { unforwarded?: number }).unforwarded ?? 0), 0)
  await server.start()
  await a.host.until(() => accounted() === 3, 'the 3 lost appends accounted for')
  t.ok(a.host.errors.every((e) => e.code === 'WS_ERR_ADAPTER_UNAVAILABLE'), 'every report says unavailable')
  t.ok(a.host.errors.filter((e) => (e as { recovered?: boolean }).recovered === true).length <= 1, 'at most one recovery report')
  a.store.append('o', '"after"')
  await a.host.until(() => a.host.delivered.length === 2, 'delivered after the restart')
  t.equal(a.host.delivered[1].offset, 1)
  t.not(a.host.delivered[1].epoch, before, 'Redis lost the position: a new epoch')
})

t.test('Redis frozen: appends past maxPendingBytes are refused, reported once, counted when it catches up; the rest delivered in order', async (t) => {
  const server = await redisFor(t)
  const a = await instance(t, server, { maxPendingBytes: 200 })
  await a.adapter.subscribe('slow')
  server.pause()
  t.teardown(() => server.resume())
  // 20 bytes each (data and topic): 10 fit
  for (let i = 0; i < 30; i++) a.store.append('slow', `"${String(i).padStart(14, '0')}"`)
  t.equal(a.host.errors.length, 1)
  t.match(a.host.errors[0], { code: 'WS_ERR_ADAPTER_OVERLOADED', recovered: false })
  server.resume()
  await a.host.until(() => a.host.errors.length === 2 && a.host.delivered.length === 10, 'caught up')
  t.match(a.host.errors[1], { code: 'WS_ERR_ADAPTER_OVERLOADED', recovered: true, unforwarded: 20 })
  t.same(a.host.offsets('slow'), Array.from({ length: 10 }, (_, i) => i + 1))
  t.same(a.host.delivered.map((p) => JSON.parse(p.data)), Array.from({ length: 10 }, (_, i) => String(i).padStart(14, '0')), 'the first ten, in order')
})

t.test('the prefix names the keys; EVALSHA falls back to EVAL after SCRIPT FLUSH', async (t) => {
  const server = await redisFor(t)
  const redis = await inspector(t, server)
  const a = await instance(t, server, { prefix: 'app1' })
  await a.adapter.subscribe('x')
  a.store.append('x', '1')
  await a.host.until(() => a.host.delivered.length === 1, 'delivered')
  t.same((await redis.keys('*')).sort(), ['app1#h#x', 'app1#p#x'])
  await redis.script('FLUSH')
  a.store.append('x', '2')
  await a.host.until(() => a.host.delivered.length === 2, 'delivered after the script cache was flushed')
  t.same(a.host.offsets('x'), [1, 2])
  t.same(a.host.errors, [])
})

t.test('history() on an adapter made from a Redis Cluster client, or twice, throws a coded error; the plugin\'s register() rejects with it', async (t) => {
  const { Cluster } = await import('ioredis')
  const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
  t.teardown(() => { cluster.disconnect() })
  t.throws(() => redisAdapter({ client: cluster }).history(HISTORY), { code: 'FST_ERR_WS_REDIS_OPTION' })
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(websocket, { adapter: redisAdapter({ client: cluster }), history: true }) }, { code: 'FST_ERR_WS_REDIS_OPTION' })
  const adapter = redisAdapter({})
  adapter.history(HISTORY)
  t.throws(() => adapter.history(HISTORY), { code: 'FST_ERR_WS_REDIS_ADAPTER_IN_USE' })
})
