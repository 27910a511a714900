// Resumable streams, end to end with `ws` clients: the `resume` query parameter, `subscribed`,
// the replay, and the seam between replay and live delivery (nothing twice, nothing missing),
// with the in-process store and with a store whose reads and deliveries are asynchronous.
import t from 'tap'
import { WebSocket as WsClient } from 'ws'
import type { TopicAdapter, TopicAdapterHost, TopicPublication } from '../../lib/index.js'
import { parseResumeParameter } from '../../lib/topics/envelope.js'
import { type Message, SlowHistoryAdapter, closeClient, historyApp, jsonClient, resumeUrl, subscribers } from './history-helpers.js'

function offsets (messages: Message[]): Array<number | string> {
  return messages.map((m) => m.type === 'publication' ? m.offset as number : `${m.type}:${String(m.recovered)}`)
}

t.test('a subscriber away during N publications resumes: subscribed recovered N, exactly those N in order, then live', async (t) => {
  const { app, base } = await historyApp(t, true)
  const first = await jsonClient(resumeUrl(base, 'feed'))
  const [subscribed] = await first.next(1)
  for (let i = 1; i <= 3; i++) app.publish('feed', { i })
  const seen = await first.next(4)
  const last = seen[3]
  t.equal(last.offset, 3)
  await closeClient(first)
  await subscribers(app, 'feed', 0)
  for (let i = 4; i <= 8; i++) app.publish('feed', { i })
  const back = await jsonClient(resumeUrl(base, 'feed', { feed: [subscribed.epoch as string, 3] }))
  const replay = await back.next(6)
  t.same(replay[0], { type: 'subscribed', topic: 'feed', epoch: subscribed.epoch, offset: 8, recovered: 5 })
  t.same(replay.slice(1).map((m) => [m.offset, (m.data as { i: number }).i]), [[4, 4], [5, 5], [6, 6], [7, 7], [8, 8]])
  app.publish('feed', { i: 9 })
  t.match((await back.next(7))[6], { type: 'publication', offset: 9, data: { i: 9 } }, 'then live')
  await closeClient(back)
})

t.test('publications during an asynchronous replay: held, then after the replay, no gap and no duplicate at the seam', async (t) => {
  const adapter = new SlowHistoryAdapter()
  const { app, base } = await historyApp(t, true, { adapter })
  const store = adapter.store!
  const watcher = await jsonClient(resumeUrl(base, 'live'))
  const [subscribed] = await watcher.next(1)
  for (let i = 1; i <= 4; i++) app.publish('live', { i: i })
  await watcher.next(5)
  const epoch = subscribed.epoch as string
  store.reads.closed = true
  const back = await jsonClient(resumeUrl(base, 'live', { live: [epoch, 2] }))
  await store.reads.arrived()
  // the read is in flight: these reach the store (offsets 5..7) and the live stream
  for (let i = 5; i <= 7; i++) app.publish('live', { i: i })
  await watcher.next(8)
  t.equal(back.got.length, 0, 'nothing written while the read is in flight')
  store.reads.open()
  const got = await back.next(6)
  // the read started after 5..7 were appended: it replays 3..7, and the held 5..7 are dropped
  t.same(offsets(got), ['subscribed:5', 3, 4, 5, 6, 7])
  app.publish('live', { i: 8 })
  t.same(offsets(await back.next(7)).slice(6), [8], 'then live, once')
  await closeClient(back)
  await closeClient(watcher)
})

t.test('a read answered before publications made during it: those come live after the replay, once', async (t) => {
  const adapter = new SlowHistoryAdapter()
  const { app, base } = await historyApp(t, true, { adapter })
  const store = adapter.store!
  const watcher = await jsonClient(resumeUrl(base, 'seam'))
  const [subscribed] = await watcher.next(1)
  for (let i = 1; i <= 3; i++) app.publish('seam', { i: i })
  await watcher.next(4)
  // the store's deliveries lag: 4 and 5 are appended (the read will carry them) but delivered only later
  store.deliveries.closed = true
  app.publish('seam', { i: 4 })
  app.publish('seam', { i: 5 })
  const back = await jsonClient(resumeUrl(base, 'seam', { seam: [subscribed.epoch as string, 1] }))
  t.same(offsets(await back.next(5)), ['subscribed:4', 2, 3, 4, 5], 'replayed up to the stream end')
  app.publish('seam', { i: 6 })
  store.deliveries.open()
  const all = await back.next(6)
  await watcher.next(7)
  t.same(offsets(all), ['subscribed:4', 2, 3, 4, 5, 6], '4 and 5 delivered late are not sent twice; 6 follows')
  t.same(offsets(watcher.got), ['subscribed:0', 1, 2, 3, 4, 5, 6], 'the other subscriber got every one, once')
  await closeClient(back)
  await closeClient(watcher)
})

t.test('resume past the window: recovered false, too-old, and live from the current position', async (t) => {
  const { app, base } = await historyApp(t, { maxMessages: 3 })
  const first = await jsonClient(resumeUrl(base, 'w'))
  const [subscribed] = await first.next(1)
  await closeClient(first)
  for (let i = 1; i <= 6; i++) app.publish('w', { i: i })
  const back = await jsonClient(resumeUrl(base, 'w', { w: [subscribed.epoch as string, 1] }))
  t.same((await back.next(1))[0], { type: 'subscribed', topic: 'w', epoch: subscribed.epoch, offset: 6, recovered: false, reason: 'too-old' })
  app.publish('w', { i: 7 })
  t.same(offsets(await back.next(2)), ['subscribed:false', 7])
  const edge = await jsonClient(resumeUrl(base, 'w', { w: [subscribed.epoch as string, 4] }))
  t.same(offsets(await edge.next(4)), ['subscribed:3', 5, 6, 7], 'the oldest kept is offset 5: resuming after 4 is whole')
  await closeClient(back)
  await closeClient(edge)
})

t.test('resume with another epoch (a restarted store): recovered false, epoch', async (t) => {
  const { app, base } = await historyApp(t, true)
  app.publish('e', { i: 1 })
  const back = await jsonClient(resumeUrl(base, 'e', { e: ['an-epoch-of-another-store', 1] }))
  const [subscribed] = await back.next(1)
  t.match(subscribed, { type: 'subscribed', topic: 'e', offset: 1, recovered: false, reason: 'epoch' })
  t.not(subscribed.epoch, 'an-epoch-of-another-store')
  await closeClient(back)
})

t.test('the resume position is used once; subscribe(topic, { since }) resumes explicitly', async (t) => {
  const { app, base } = await historyApp(t, true, {}, (app) => {
    app.ws('/again', (socket, request) => {
      const epoch = (request.query as { epoch: string }).epoch
      socket.subscribe('s')
      socket.unsubscribe('s')
      socket.subscribe('s')
      socket.unsubscribe('s')
      socket.subscribe('s', { since: { epoch, offset: 2 } })
    })
  })
  const probe = await jsonClient(resumeUrl(base, 's'))
  const [subscribed] = await probe.next(1)
  const epoch = subscribed.epoch as string
  for (let i = 1; i <= 3; i++) app.publish('s', { i: i })
  await closeClient(probe)
  const resume = encodeURIComponent(JSON.stringify({ s: [epoch, 1] }))
  const client = await jsonClient(`${base}/again?resume=${resume}&epoch=${encodeURIComponent(epoch)}`)
  await client.next(6)
  t.same(offsets(client.got.slice(0, 6)), ['subscribed:2', 2, 3, 'subscribed:0', 'subscribed:1', 3])
  await closeClient(client)
})

t.test('a bad resume parameter is ignored (debug log), never a crash', async (t) => {
  const { app, base, log } = await historyApp(t, true)
  app.publish('b', { i: 1 })
  const bad = [
    'not json', '[]', 'null', '"x"', '{"b":["e"]}', '{"b":["e",-1]}', '{"b":["e",1.5]}', '{"b":[1,1]}', '{"b":["",1]}',
    `{"b":["${'x'.repeat(65)}",1]}`, '{"":["e",1]}', JSON.stringify(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`t${i}`, ['e', 1]]))),
    'x'.repeat(12_000), '%E0%A4%A'
  ]
  for (const value of bad) {
    const client = await jsonClient(`${base}/sub/b?resume=${value.startsWith('%') ? value : encodeURIComponent(value)}`)
    t.match((await client.next(1))[0], { type: 'subscribed', topic: 'b', offset: 1, recovered: 0 }, `ignored: ${value.slice(0, 40)}`)
    await closeClient(client)
  }
  t.ok(log.records.filter((r) => r.msg === 'websocket resume parameter ignored').length >= bad.length - 1, 'logged at debug')
  t.same(log.errors(), [])
  // the bound on the text before JSON.parse (a server with a large maxHeaderSize could pass it)
  t.equal(parseResumeParameter(' '.repeat(200_000) + '{}', 1024), 'too long')
  t.same(parseResumeParameter('{"a":["e",0]}', 1024), new Map([['a', { epoch: 'e', offset: 0 }]]))
})

t.test('the seam buffer is bounded: past maxMessages held publications the socket is closed with 1013', async (t) => {
  const adapter = new SlowHistoryAdapter()
  const { app, base } = await historyApp(t, { maxMessages: 3 }, { adapter })
  const store = adapter.store!
  const probe = await jsonClient(resumeUrl(base, 'o'))
  const [subscribed] = await probe.next(1)
  app.publish('o', { i: 1 })
  await probe.next(2)
  store.reads.closed = true
  const back = await jsonClient(resumeUrl(base, 'o', { o: [subscribed.epoch as string, 1] }))
  await store.reads.arrived()
  // three are held (maxMessages), the fourth overflows
  for (let i = 2; i <= 5; i++) app.publish('o', { i: i })
  const [code, reason] = await back.closed
  t.equal(code, 1013, 'Try Again Later')
  t.equal(reason, 'resume buffer overflow')
  store.reads.open()
  t.same(offsets(await probe.next(6)), ['subscribed:0', 1, 2, 3, 4, 5], 'the others are not affected')
  // the client comes back and resumes: the store still has what it missed
  const again = await jsonClient(resumeUrl(base, 'o', { o: [subscribed.epoch as string, 2] }))
  t.same(offsets(await again.next(4)), ['subscribed:3', 3, 4, 5], 'replayed on the next connection')
  await closeClient(probe)
  await closeClient(again)
})

t.test('a store that fails to read: the socket is closed with 1013, the failure reported as an adapter error', async (t) => {
  const adapter = new SlowHistoryAdapter()
  const { app, base } = await historyApp(t, true, { adapter })
  const errors: unknown[] = []
  app.websocketTopics.on('adapterError', (err) => errors.push(err))
  adapter.store!.failReads = true
  const client = await jsonClient(resumeUrl(base, 'f', { f: ['e', 1] }))
  const [code] = await client.closed
  t.equal(code, 1013)
  t.match(errors, [{ code: 'TEST_STORE_DOWN' }])
  t.equal(app.websocketTopics.adapterErrors, 1)
  t.equal(client.ws.readyState, WsClient.CLOSED)
})

t.test('unsubscribed while the read is in flight: no `subscribed`, no replay, nothing held', async (t) => {
  const adapter = new SlowHistoryAdapter()
  const { app, base } = await historyApp(t, true, { adapter }, (app) => {
    app.ws('/flip', (socket) => {
      socket.subscribe('flip')
      socket.on('message', () => {
        socket.unsubscribe('flip')
        socket.send({ type: 'unsubscribed' })
      })
    })
    app.ws('/ping', (socket) => { socket.on('message', () => socket.send({ type: 'pong' })) })
  })
  const store = adapter.store!
  store.reads.closed = true
  const client = await jsonClient(`${base}/flip?resume=${encodeURIComponent(JSON.stringify({ flip: ['e', 0] }))}`)
  await store.reads.arrived()
  client.ws.send('leave')
  await client.next(1)
  app.publish('flip', { i: 1 })
  store.reads.open()
  // a round trip after the read was answered: anything sent for the subscription would come first
  client.ws.send('again')
  t.same(await client.next(2), [{ type: 'unsubscribed' }, { type: 'unsubscribed' }])
  await closeClient(client)
})

t.test('an adapter without a store of its own: each process keeps its own history of what it receives', async (t) => {
  // two apps linked by a user's adapter that hands every publication to the other app
  class LinkAdapter implements TopicAdapter {
    peer: LinkAdapter | null = null
    host: TopicAdapterHost | null = null
    init (host: TopicAdapterHost): void { this.host = host }
    subscribe (): void {}
    unsubscribe (): void {}
    publish (publication: TopicPublication): void { this.peer?.host?.deliver(publication) }
    async subscriberCount (topic: string): Promise<number> { return this.host?.localCount(topic) ?? 0 }
    async close (): Promise<void> {}
  }
  const a = new LinkAdapter()
  const b = new LinkAdapter()
  a.peer = b
  b.peer = a
  const one = await historyApp(t, true, { adapter: a })
  const two = await historyApp(t, true, { adapter: b })
  const there = await jsonClient(resumeUrl(two.base, 'x'))
  const [subscribed] = await there.next(1)
  one.app.publish('x', { from: 'one' })
  one.app.publish('x', 'two')
  const got = await there.next(3)
  t.same(got.slice(1).map((m) => [m.epoch, m.offset, m.data]), [[subscribed.epoch, 1, { from: 'one' }], [subscribed.epoch, 2, 'two']],
    'the receiving process gives its own offsets, in its own epoch')
  const here = await jsonClient(resumeUrl(one.base, 'x'))
  t.match((await here.next(1))[0], { type: 'subscribed', offset: 2, recovered: 0 }, 'the publishing process kept them too')
  t.not((here.got[0]).epoch, subscribed.epoch)
  await closeClient(there)
  await closeClient(here)
})

t.test('a listener that publishes while a publication is being written: every subscriber still gets offset order', async (t) => {
  const { app, base } = await historyApp(t, true, {}, (app) => {
    app.ws('/drop', { maxBufferedAmount: 1, bufferedAmountPolicy: 'drop' }, (socket) => {
      socket.subscribe('r')
      // a dropped publication (this socket's buffer is full) makes it publish: a delivery within a delivery
      socket.once('dropped', () => { app.publish('r', { nested: true }) })
    })
  })
  const dropping = await jsonClient(`${base}/drop`)
  await dropping.next(1)
  const reader = await jsonClient(resumeUrl(base, 'r'))
  await reader.next(1)
  await subscribers(app, 'r', 2)
  app.publish('r', { n: 1 })
  app.publish('r', { n: 2 })
  const got = await reader.next(4)
  t.same(offsets(got), ['subscribed:0', 1, 2, 3])
  t.same(got[3].data, { nested: true })
  await closeClient(dropping)
  await closeClient(reader)
})
