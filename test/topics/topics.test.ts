// Topics in one process: socket.subscribe/unsubscribe/isSubscribed/topics/publish, app.publish,
// app.subscriberCount, app.presence; the adapter contract as the hub drives it; adapter failures.
import t from 'tap'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { type TopicAdapter, type TopicAdapterHost, type TopicPublication, type WebSocket } from '../../lib/index.js'
import { deadline, logCapture, rawWebSocket } from '../hostile/helpers.js'

interface Client { ws: WsClient, got: Array<[string, boolean]>, next: (n: number) => Promise<Array<[string, boolean]>> }

function client (url: string, options: { perMessageDeflate?: boolean } = {}): Promise<Client> {
  const ws = new WsClient(url, { perMessageDeflate: options.perMessageDeflate ?? false })
  const got: Array<[string, boolean]> = []
  let waiter: (() => void) | undefined
  ws.on('message', (data: Buffer, isBinary: boolean) => { got.push([data.toString(), isBinary]); waiter?.() })
  const next = (n: number): Promise<Array<[string, boolean]>> => deadline(new Promise((resolve) => {
    const check = (): void => { if (got.length >= n) { waiter = undefined; resolve(got.slice(0, n)) } }
    waiter = check
    check()
  }), 5000, `${n} message(s)`)
  return new Promise((resolve, reject) => { ws.once('open', () => resolve({ ws, got, next })); ws.once('error', reject) })
}

/** A topic adapter that records what the hub asks of it (an implementation of the interface, as a user would write). */
class RecordingAdapter implements TopicAdapter {
  host: TopicAdapterHost | null = null
  calls: string[] = []
  published: TopicPublication[] = []
  remoteCount = 0
  failPublish = false
  failSubscribe = false
  init (host: TopicAdapterHost): Promise<void> { this.host = host; this.calls.push('init'); return Promise.resolve() }
  subscribe (topic: string): Promise<void> {
    this.calls.push(`subscribe ${topic}`)
    return this.failSubscribe ? Promise.reject(Object.assign(new Error('no channel'), { code: 'TEST_SUBSCRIBE' })) : Promise.resolve()
  }

  unsubscribe (topic: string): void { this.calls.push(`unsubscribe ${topic}`) }
  publish (publication: TopicPublication): void {
    if (this.failPublish) throw Object.assign(new Error('down'), { code: 'TEST_DOWN' })
    this.published.push(publication)
  }

  async subscriberCount (topic: string): Promise<number> { return (this.host?.localCount(topic) ?? 0) + this.remoteCount }
  async close (): Promise<void> { this.calls.push('close') }
}

async function start (t: { teardown: (fn: () => unknown) => void }, adapter?: TopicAdapter, routes?: (app: FastifyInstance) => void) {
  const log = logCapture()
  const app = Fastify({ logger: { level: 'warn', stream: log.stream } })
  await app.register(websocket, adapter === undefined ? {} : { adapter })
  app.ws('/topics/:topic', (socket, request) => {
    const topic = (request.params as { topic: string }).topic
    socket.subscribe(topic)
    socket.on('message', (data: Buffer, isBinary: boolean) => { socket.publish(topic, data, { binary: isBinary }) })
  })
  app.ws('/self/:topic', (socket, request) => {
    const topic = (request.params as { topic: string }).topic
    socket.subscribe(topic)
    socket.on('message', (data: Buffer) => { socket.publish(topic, data.toString(), { self: true }) })
  })
  routes?.(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, log, base: `ws://127.0.0.1:${port}`, port }
}

async function subscribers (app: FastifyInstance, topic: string, n: number): Promise<void> {
  const until = Date.now() + 5000
  while (app.subscriberCount(topic) !== n) {
    if (Date.now() > until) throw new Error(`${topic} never had ${n} subscribers (has ${app.subscriberCount(topic)})`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

t.test('a socket publishes to the other subscribers of its topic, same opcode, never to itself or other topics', async (t) => {
  const { app, base } = await start(t)
  const [a, b, c, other] = await Promise.all([client(`${base}/topics/red`), client(`${base}/topics/red`), client(`${base}/topics/red`), client(`${base}/topics/blue`)])
  await subscribers(app, 'red', 3)
  t.equal(app.subscriberCount('blue'), 1)
  a.ws.send('hello red')
  a.ws.send(Buffer.from([1, 2, 3]))
  t.same(await b.next(2), [['hello red', false], [Buffer.from([1, 2, 3]).toString(), true]])
  t.same(await c.next(2), [['hello red', false], [Buffer.from([1, 2, 3]).toString(), true]])
  // a round trip on the sender's and the other topic's connections: nothing arrived meanwhile
  b.ws.send('from b')
  t.same((await a.next(1))[0], ['from b', false])
  t.same(a.got, [['from b', false]], 'the sender received only what b published')
  t.same(other.got, [], 'another topic receives nothing')
  for (const x of [a, b, c, other]) x.ws.close()
})

t.test('{ self: true } delivers to the publisher too; app.publish reaches every subscriber', async (t) => {
  const { app, base } = await start(t)
  const [a, b] = await Promise.all([client(`${base}/self/room`), client(`${base}/self/room`)])
  await subscribers(app, 'room', 2)
  a.ws.send('mine')
  t.same(await a.next(1), [['mine', false]])
  t.same(await b.next(1), [['mine', false]])
  t.equal(app.publish('room', { notice: 'from the app' }), 2, 'both accepted it')
  t.equal(app.publish('nobody-here', 'x'), 0)
  t.same((await a.next(2))[1], ['{"notice":"from the app"}', false])
  t.same((await b.next(2))[1], ['{"notice":"from the app"}', false])
  t.equal(await app.presence('room'), 2, 'presence in one process is the local count')
  a.ws.close()
  b.ws.close()
})

t.test('the socket API: subscribe, unsubscribe, isSubscribed, topics; subscriptions end with the socket', async (t) => {
  const adapter = new RecordingAdapter()
  let server: WebSocket | undefined
  const { app, base } = await start(t, adapter, (app) => {
    app.ws('/api', (socket) => { server = socket })
  })
  const a = await client(`${base}/api`)
  await deadline((async () => { while (server === undefined) await new Promise((resolve) => setImmediate(resolve)) })(), 5000, 'the server socket')
  const s = server!
  t.equal(s.subscribe('x'), true)
  t.equal(s.subscribe('x'), false, 'already subscribed')
  t.equal(s.subscribe('y'), true)
  t.equal(s.isSubscribed('x'), true)
  t.equal(s.isSubscribed('z'), false)
  t.same([...s.topics], ['x', 'y'])
  t.equal(s.unsubscribe('y'), true)
  t.equal(s.unsubscribe('y'), false, 'not subscribed any more')
  t.same([...s.topics], ['x'])
  for (const bad of ['', 42, null, 'x'.repeat(1025)]) {
    t.throws(() => s.subscribe(bad as never), { code: 'FST_ERR_WS_INVALID_TOPIC' }, `subscribe(${String(bad).slice(0, 8)})`)
  }
  t.throws(() => s.publish('x', 42 as never), { code: 'FST_ERR_WS_INVALID_DATA' })
  t.throws(() => s.publish('x', 'ok', { self: 'yes' as never }), { code: 'FST_ERR_WS_INVALID_PUBLISH_OPTIONS' })
  t.throws(() => app.publish('', 'x'), { code: 'FST_ERR_WS_INVALID_TOPIC' })
  t.same(adapter.calls, ['init', 'subscribe x', 'subscribe y', 'unsubscribe y'], 'the adapter hears of the first and the last subscriber only')
  a.ws.close()
  await once(s, 'close')
  t.equal(app.subscriberCount('x'), 0, 'the closed socket left its topics')
  t.same(adapter.calls.slice(4), ['unsubscribe x'])
  t.equal(s.subscribe('x'), false, 'a closed socket cannot subscribe')
})

t.test('the adapter: every publication is forwarded once as bytes; deliver() reaches local subscribers only', async (t) => {
  const adapter = new RecordingAdapter()
  const { app, base } = await start(t, adapter)
  const [a, b] = await Promise.all([client(`${base}/topics/news`), client(`${base}/topics/news`)])
  await subscribers(app, 'news', 2)
  t.same(adapter.calls, ['init', 'subscribe news'], 'one subscribe for two local subscribers')
  a.ws.send('local')
  await b.next(1)
  app.publish('news', { n: 1 })
  app.publish('elsewhere', Buffer.from([9]))
  t.same(adapter.published.map((p) => [p.topic, p.payload.toString('latin1'), p.binary, p.json ?? false]), [
    ['news', 'local', false, false], ['news', '{"n":1}', false, true], ['elsewhere', '\x09', true, false]
  ], 'publications of topics without local subscribers still go to other processes')
  // a publication from another process
  adapter.host!.deliver({ topic: 'news', payload: Buffer.from('remote'), binary: false })
  adapter.host!.deliver({ topic: 'news', payload: Buffer.from([0xff]), binary: true })
  adapter.host!.deliver({ topic: 'nobody', payload: Buffer.from('lost'), binary: false })
  t.same((await a.next(3)).slice(1), [['remote', false], [Buffer.from([0xff]).toString(), true]])
  t.same((await b.next(4)).slice(1), [['{"n":1}', false], ['remote', false], [Buffer.from([0xff]).toString(), true]])
  t.equal(adapter.published.length, 3, 'nothing delivered from another process is forwarded again')
  adapter.remoteCount = 5
  t.equal(await app.presence('news'), 7, 'presence asks the adapter')
  a.ws.close()
  b.ws.close()
})

t.test('adapter failures are counted, emitted and logged, never thrown; local delivery stands', async (t) => {
  const adapter = new RecordingAdapter()
  const { app, base, log } = await start(t, adapter)
  const errors: Array<string | undefined> = []
  app.websocketTopics.on('adapterError', (err: Error & { code?: string }) => errors.push(err.code))
  adapter.failSubscribe = true
  const [a, b] = await Promise.all([client(`${base}/topics/t`), client(`${base}/topics/t`)])
  await subscribers(app, 't', 2)
  adapter.failPublish = true
  t.equal(app.publish('t', 'still here'), 2, 'local subscribers accepted it')
  await a.next(1)
  await b.next(1)
  // a publication from another process that is not UTF-8 as text is refused, not delivered
  adapter.host!.deliver({ topic: 't', payload: Buffer.from([0xc3, 0x28]), binary: false })
  adapter.host!.onError(Object.assign(new Error('outage'), { code: 'TEST_OUTAGE' }))
  await deadline((async () => { while (errors.length < 4) await new Promise((resolve) => setImmediate(resolve)) })(), 5000, 'four adapter errors')
  t.same(errors.sort(), ['FST_ERR_WS_INVALID_UTF8', 'TEST_DOWN', 'TEST_OUTAGE', 'TEST_SUBSCRIBE'])
  t.equal(app.websocketTopics.adapterErrors, 4)
  t.equal(log.records.filter((r) => r.msg === 'websocket topic adapter error').length, 4, 'each one logged')
  t.equal(log.errors().length, 0, 'no error-level log')
  a.ws.send('ping?')
  t.same((await b.next(2))[1], ['ping?', false], 'the topic still works')
  a.ws.close()
  b.ws.close()
})

t.test('the adapter option: validated, started before the app is ready, closed with it', async (t) => {
  const bad = Fastify()
  await t.rejects(async () => { await bad.register(websocket, { adapter: { publish () {} } as never }) }, { code: 'FST_ERR_WS_INVALID_OPTION' })
  const failing = Fastify()
  const refused = new RecordingAdapter()
  refused.init = () => Promise.reject(Object.assign(new Error('cannot connect'), { code: 'TEST_CONNECT' }))
  await t.rejects(async () => { await failing.register(websocket, { adapter: refused }) }, { code: 'TEST_CONNECT' }, 'an adapter that cannot start rejects register()')
  const app = Fastify()
  const adapter = new RecordingAdapter()
  let ready = false
  adapter.init = async (host) => { await new Promise((resolve) => setImmediate(resolve)); adapter.host = host; ready = true }
  await app.register(websocket, { adapter })
  t.equal(ready, true, 'register() waited for init()')
  await app.close()
  t.same(adapter.calls, ['close'])
})

t.test('a subscriber with permessage-deflate compresses its own copy', async (t) => {
  const { app, port } = await start(t, undefined, (app) => {
    app.ws('/z/:topic', { perMessageDeflate: { threshold: 0 } }, (socket, request) => { socket.subscribe((request.params as { topic: string }).topic) })
  })
  const deflating = await rawWebSocket(port, '/z/mixed', { 'Sec-WebSocket-Extensions': 'permessage-deflate' })
  const plain = await rawWebSocket(port, '/z/mixed')
  await subscribers(app, 'mixed', 2)
  app.publish('mixed', 'the same text to both, the same text to both')
  const [compressed] = await deflating.waitFrames(1)
  const [raw] = await plain.waitFrames(1)
  t.equal(compressed.rsv, 4, 'RSV1: compressed for the deflate subscriber')
  t.equal(raw.rsv, 0)
  t.equal(raw.payload.toString(), 'the same text to both, the same text to both')
  deflating.socket.destroy()
  plain.socket.destroy()
})

t.test('app.publish from a child context uses the hub of the registration serving it', async (t) => {
  const { app, base } = await start(t, undefined, (app) => {
    app.register(async (child) => {
      child.get('/announce', async () => ({ accepted: child.publish('hall', 'from a child route') }))
    })
  })
  const a = await client(`${base}/topics/hall`)
  await subscribers(app, 'hall', 1)
  const response = await app.inject('/announce')
  t.same(response.json(), { accepted: 1 })
  t.same(await a.next(1), [['from a child route', false]])
  a.ws.close()
})

t.test('two registrations in sibling contexts have topics of their own', async (t) => {
  const app = Fastify()
  const contexts: FastifyInstance[] = []
  for (const prefix of ['/a', '/b']) {
    await app.register(async (child) => {
      await child.register(websocket)
      child.ws('/t', (socket) => { socket.subscribe('shared-name') })
      contexts.push(child)
    }, { prefix })
  }
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const [a, b] = await Promise.all([client(`ws://127.0.0.1:${port}/a/t`), client(`ws://127.0.0.1:${port}/b/t`)])
  await subscribers(contexts[0], 'shared-name', 1)
  await subscribers(contexts[1], 'shared-name', 1)
  t.not(contexts[0].websocketTopics, contexts[1].websocketTopics)
  t.equal(contexts[0].publish('shared-name', 'to a'), 1)
  t.same(await a.next(1), [['to a', false]])
  t.equal(contexts[1].publish('shared-name', 'to b'), 1)
  t.same(await b.next(1), [['to b', false]])
  t.same(a.got, [['to a', false]], "a never hears b's registration")
  a.ws.close()
  b.ws.close()
})
