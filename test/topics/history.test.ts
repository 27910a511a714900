// Topic history: the in-process store (offsets, epochs, bounds), the envelope on the wire, the
// plugin option `history` and the coded errors of its misuse.
import t from 'tap'
import Fastify from 'fastify'
import websocket, { MemoryTopicHistory, type StreamPublication } from '../../lib/index.js'
import { ENTRY_OVERHEAD, TOPIC_OVERHEAD } from '../../lib/topics/memory-history.js'
import { closeClient, historyApp, jsonClient, subscribers } from './history-helpers.js'

function store (options: { maxMessages?: number, maxAge?: number, maxBytes?: number, now?: () => number, active?: (topic: string) => boolean } = {}) {
  const delivered: StreamPublication[] = []
  const history = new MemoryTopicHistory({ maxMessages: 100, maxAge: 300_000, ...options })
  history.init({ deliver: (p) => { delivered.push(p) }, onError: (err) => { throw err } })
  t.teardown(() => history.close())
  return { history, delivered }
}

t.test('the in-process store: offsets from 1 increasing by one per topic, delivered within append', async (t) => {
  const { history, delivered } = store()
  history.append('a', '1')
  t.equal(delivered.length, 1, 'delivered before append() returned')
  history.append('a', '"two"')
  history.append('b', '{"x":3}')
  t.same(delivered.map((p) => [p.topic, p.offset, p.data]), [['a', 1, '1'], ['a', 2, '"two"'], ['b', 1, '{"x":3}']])
  t.equal(delivered[0].epoch, delivered[1].epoch, 'one epoch per stream')
  t.not(delivered[0].epoch, delivered[2].epoch, 'each stream its own epoch')
  t.ok(delivered[0].epoch.length <= 64)
  t.same(history.position('a'), { epoch: delivered[0].epoch, offset: 2 })
  const other = new MemoryTopicHistory({ maxMessages: 10, maxAge: 1000 })
  other.append('a', '1')
  t.not(other.position('a').epoch, delivered[0].epoch, 'another store (a restart) has other epochs')
  await other.close()
})

t.test('read(): what follows a position, too-old past the window, epoch for another stream', async (t) => {
  const { history, delivered } = store({ maxMessages: 3 })
  for (let i = 1; i <= 5; i++) history.append('a', String(i))
  const epoch = delivered[0].epoch
  t.same(history.read('a', { epoch, offset: 3 }), { ok: true, epoch, offset: 5, entries: [{ offset: 4, data: '4' }, { offset: 5, data: '5' }] })
  t.same(history.read('a', { epoch, offset: 2 }), { ok: true, epoch, offset: 5, entries: [{ offset: 3, data: '3' }, { offset: 4, data: '4' }, { offset: 5, data: '5' }] }, 'the whole window')
  t.same(history.read('a', { epoch, offset: 5 }), { ok: true, epoch, offset: 5, entries: [] }, 'nothing missed')
  t.same(history.read('a', { epoch, offset: 1 }), { ok: false, reason: 'too-old', epoch, offset: 5 }, 'offset 2 was dropped')
  t.same(history.read('a', { epoch: 'other', offset: 5 }), { ok: false, reason: 'epoch', epoch, offset: 5 })
  t.same(history.read('a', { epoch, offset: 6 }), { ok: false, reason: 'epoch', epoch, offset: 5 }, 'a position past the end is not of this stream')
  const fresh = history.read('never', { epoch, offset: 1 })
  t.match(fresh, { ok: false, reason: 'epoch', offset: 0 }, 'a stream this store never had')
  t.equal(history.position('never').epoch, fresh.epoch, 'the fresh stream keeps its epoch for the publications that follow')
})

t.test('maxAge: publications older than it are dropped; a topic left empty without subscriber is forgotten (new epoch)', async (t) => {
  let now = 1_000_000
  const active = new Set<string>()
  const { history, delivered } = store({ maxAge: 1000, now: () => now, active: (topic) => active.has(topic) })
  history.append('a', '1')
  history.append('b', '1')
  now += 600
  history.append('a', '2')
  const epoch = delivered[0].epoch
  now += 600
  t.same(history.read('a', { epoch, offset: 1 }), { ok: true, epoch, offset: 2, entries: [{ offset: 2, data: '2' }] })
  t.same(history.read('a', { epoch, offset: 0 }), { ok: false, reason: 'too-old', epoch, offset: 2 }, 'offset 1 aged out')
  now += 2000
  active.add('a')
  history.sweep()
  t.equal(history.topicCount, 1, 'b (empty, no subscriber) forgotten; a kept (a subscriber)')
  t.same(history.position('a'), { epoch, offset: 2 }, 'a subscribed topic keeps its stream')
  history.append('b', '1')
  t.not(delivered.at(-1)!.epoch, delivered[1].epoch, 'b starts a new epoch')
  t.equal(delivered.at(-1)!.offset, 1)
})

t.test('the byte bound: the least recently published topics are forgotten first, the one appended to keeps its newest', async (t) => {
  const data = 'x'.repeat(100)
  const perTopic = TOPIC_OVERHEAD + data.length + ENTRY_OVERHEAD
  const { history, delivered } = store({ maxBytes: perTopic * 10 })
  for (let i = 0; i < 1000; i++) history.append(`topic-${i}`, data)
  t.ok(history.bytes <= perTopic * 10, `bytes ${history.bytes} within the bound`)
  t.equal(history.topicCount, 10, 'the 10 most recent topics kept')
  t.same(history.position('topic-999'), { epoch: delivered[999].epoch, offset: 1 })
  t.not(history.position('topic-0').epoch, delivered[0].epoch, 'a forgotten topic has a new epoch')
  // one topic over the whole bound: its oldest publications go, the newest stays
  const big = 'y'.repeat(perTopic * 4)
  for (let i = 0; i < 5; i++) history.append('big', big)
  t.ok(history.bytes <= perTopic * 10 || history.topicCount === 1)
  const read = history.read('big', { epoch: history.position('big').epoch, offset: 4 })
  t.match(read, { ok: true, offset: 5, entries: [{ offset: 5 }] }, 'the newest kept')
  t.match(history.read('big', { epoch: history.position('big').epoch, offset: 0 }), { ok: false, reason: 'too-old' })
})

t.test('the envelope: exactly {"type":"publication","topic","epoch","offset","data"}, after `subscribed`', async (t) => {
  const { app, base } = await historyApp(t, true)
  const sub = await jsonClient(`${base}/sub/news`)
  const [subscribed] = await sub.next(1)
  t.match(subscribed, { type: 'subscribed', topic: 'news', offset: 0, recovered: 0 })
  t.type(subscribed.epoch, 'string')
  t.equal(app.publish('news', { a: 1, b: [true, null] }), 1)
  t.equal(app.publish('news', 'hello "you"'), 1)
  const raw: string[] = []
  sub.ws.on('message', (data: Buffer) => raw.push(data.toString()))
  app.publish('news', [1, 2])
  await sub.next(4)
  const epoch = JSON.stringify(subscribed.epoch)
  t.same(sub.got.slice(1, 3), [
    { type: 'publication', topic: 'news', epoch: subscribed.epoch, offset: 1, data: { a: 1, b: [true, null] } },
    { type: 'publication', topic: 'news', epoch: subscribed.epoch, offset: 2, data: 'hello "you"' }
  ])
  t.equal(raw.find((text) => text.includes('"offset":3')), `{"type":"publication","topic":"news","epoch":${epoch},"offset":3,"data":[1,2]}`, 'the text exactly')
  await closeClient(sub)
})

t.test('a socket publication on a topic with history skips the publisher (in-process store) and counts the others', async (t) => {
  const { app, base } = await historyApp(t, true)
  const publisher = await jsonClient(`${base}/pub/room`)
  const other = await jsonClient(`${base}/sub/room`)
  await subscribers(app, 'room', 2)
  await publisher.next(1)
  await other.next(1)
  publisher.ws.send(JSON.stringify({ text: 'hi' }))
  const [, publication] = await other.next(2)
  t.match(publication, { type: 'publication', offset: 1, data: { text: 'hi' } })
  app.publish('room', 'from the app')
  const [, second] = await publisher.next(2)
  t.match(second, { type: 'publication', offset: 2, data: 'from the app' }, 'the publisher got the next one, not its own')
  await closeClient(publisher)
  await closeClient(other)
})

t.test('`history.topics` chooses the topics with history; the others publish as before', async (t) => {
  const { app, base } = await historyApp(t, { topics: (topic) => topic.startsWith('h:') })
  const plain = await jsonClient(`${base}/sub/plain`)
  const kept = await jsonClient(`${base}/sub/h%3Aone`)
  await kept.next(1)
  await subscribers(app, 'plain', 1)
  app.publish('plain', { n: 1 })
  app.publish('h:one', { n: 1 })
  t.same(await plain.next(1), [{ n: 1 }], 'no envelope, no subscribed')
  t.match((await kept.next(2))[1], { type: 'publication', topic: 'h:one', offset: 1, data: { n: 1 } })
  t.equal(app.publish('plain', Buffer.from('{"n":2}')), 1, 'binary still publishes on a topic without history')
  t.same((await plain.next(2))[1], { n: 2 })
  await closeClient(plain)
  await closeClient(kept)
})

t.test('binary data on a topic with history throws FST_ERR_WS_HISTORY_BINARY at the call', async (t) => {
  const { app, base } = await historyApp(t, true)
  t.throws(() => app.publish('t', Buffer.from('x')), { code: 'FST_ERR_WS_HISTORY_BINARY' })
  t.throws(() => app.publish('t', new Uint8Array(2)), { code: 'FST_ERR_WS_HISTORY_BINARY' })
  t.throws(() => app.publish('t', 'text', { binary: true }), { code: 'FST_ERR_WS_HISTORY_BINARY' })
  const sub = await jsonClient(`${base}/sub/t`)
  await sub.next(1)
  app.publish('t', 'ok')
  t.match((await sub.next(2))[1], { offset: 1, data: 'ok' }, 'nothing was appended by the refused calls')
  await closeClient(sub)
})

t.test('bad `history` options reject register() with a coded error', async (t) => {
  const bad: Array<[unknown, string]> = [
    [1, 'FST_ERR_WS_INVALID_OPTION'],
    ['yes', 'FST_ERR_WS_INVALID_OPTION'],
    [null, 'FST_ERR_WS_INVALID_OPTION'],
    [{ maxMessages: 0 }, 'FST_ERR_WS_INVALID_OPTION'],
    [{ maxMessages: 1.5 }, 'FST_ERR_WS_INVALID_OPTION'],
    [{ maxMessages: Infinity }, 'FST_ERR_WS_INVALID_OPTION'],
    [{ maxAge: -1 }, 'FST_ERR_WS_INVALID_OPTION'],
    [{ maxAge: '5m' }, 'FST_ERR_WS_INVALID_OPTION'],
    [{ maxBytes: 0 }, 'FST_ERR_WS_INVALID_OPTION'],
    [{ topics: 'a*' }, 'FST_ERR_WS_INVALID_OPTION'],
    [{ maxMessage: 10 }, 'FST_ERR_WS_UNKNOWN_OPTION']
  ]
  for (const [history, code] of bad) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(websocket, { history } as never) }, { code }, `history: ${JSON.stringify(history)}`)
    await app.close()
  }
  const app = Fastify()
  await app.register(websocket, { history: { maxAge: Infinity, maxMessages: 5 } })
  await app.ready()
  t.ok(app.websocketTopics.history !== null, 'maxAge: Infinity is allowed')
  await app.close()
  const off = Fastify()
  await off.register(websocket, { history: false })
  await off.ready()
  t.equal(off.websocketTopics.history, null, 'false: no history')
  await off.close()
})

t.test('subscribe(topic, { since }): a bad since throws FST_ERR_WS_INVALID_SINCE, a topic without history FST_ERR_WS_NO_HISTORY', async (t) => {
  const app = Fastify()
  await app.register(websocket, { history: { topics: (topic) => topic !== 'plain' } })
  app.ws('/since', (socket) => {
    const errors: Array<string | undefined> = []
    const attempts: unknown[] = [null, 5, { since: null }, { since: {} }, { since: { epoch: '', offset: 1 } },
      { since: { epoch: 'e', offset: -1 } }, { since: { epoch: 'e', offset: 1.5 } }, { since: { epoch: 'x'.repeat(65), offset: 1 } }]
    for (const options of attempts) {
      try { socket.subscribe('t', options as never) } catch (err) { errors.push((err as { code?: string }).code) }
    }
    try { socket.subscribe('plain', { since: { epoch: 'e', offset: 1 } }) } catch (err) { errors.push((err as { code?: string }).code) }
    socket.send({ type: 'done', errors, topics: [...socket.topics] })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const client = await jsonClient(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/since`)
  const [done] = await client.next(1)
  t.same(done, { type: 'done', errors: [...new Array(8).fill('FST_ERR_WS_INVALID_SINCE'), 'FST_ERR_WS_NO_HISTORY'], topics: [] }, 'thrown before subscribing')
  await closeClient(client)
})
