// Resumable streams end to end in Node: the client (on undici's WebSocket) on a contract route whose
// handler subscribes to a topic with history. The server cuts the connection, publications go on
// while the client is away, and the client comes back by itself: the app's handler sees exactly
// the missed ones, in order, then the live ones, and onRecovery says how many were recovered; past
// the history window it says 'too-old', and after a server restart (a new store, a new epoch) 'epoch'.
// With a store that answers asynchronously (R1's SlowHistoryAdapter of the topic tests), live
// publications keep flowing during the replay and the handler still sees each once, in order; a
// store that fails makes the server close with 1013, and the client comes back and recovers.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { WebSocket as UndiciWebSocket } from 'undici'
import websocket, { type TopicAdapter, type WebSocket } from '../../lib/index.js'
import { createClient, defineContract, type ContractClient, type Recovery } from '../../lib/client.js'
import { deadline } from '../plugin/helpers.js'
import { SlowHistoryAdapter } from '../topics/history-helpers.js'
import { reach } from './helpers.js'

const feed = defineContract({
  /** the server publishes { type: 'item', n: 0 } to 'news' from this socket */
  client: { hello: Type.Object({ self: Type.Boolean() }) },
  server: { item: Type.Object({ n: Type.Integer() }) }
})

interface Server { app: FastifyInstance, port: number, sockets: Set<WebSocket> }

/** An app with history whose /feed route subscribes each socket to 'news'. */
async function serve (t: Test, options: { maxMessages?: number, port?: number, adapter?: TopicAdapter } = {}): Promise<Server> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { history: { maxMessages: options.maxMessages ?? 100 }, adapter: options.adapter })
  const sockets = new Set<WebSocket>()
  app.ws('/feed', { contract: feed, messageHandlers: { hello: (m, socket) => { socket.publish('news', { type: 'item', n: 0 }, { self: m.self }) } } }, (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.subscribe('news')
  })
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 })
  return { app, port: (app.server.address() as { port: number }).port, sockets }
}

function publish (server: Server, from: number, to: number): void {
  for (let n = from; n <= to; n++) server.app.publish('news', { type: 'item', n })
}

/** A client of /feed that records the items its handler sees and what onRecovery reports. */
function follow (t: Test, port: number): { client: ContractClient<typeof feed>, items: number[], recoveries: Recovery[], recovery: () => Promise<Recovery> } {
  const client = createClient(feed, { url: `ws://127.0.0.1:${port}/feed`, WebSocket: UndiciWebSocket, reconnect: { initialDelay: 20, maxDelay: 100 } })
  t.teardown(() => client.close())
  const items: number[] = []
  const recoveries: Recovery[] = []
  client.on('item', (m) => items.push(m.n))
  client.onRecovery((r) => recoveries.push(r))
  const recovery = (): Promise<Recovery> => deadline(new Promise((resolve) => { const stop = client.onRecovery((r) => { stop(); resolve(r) }) }), 'a recovery')
  return { client, items, recoveries, recovery }
}

/** Wait until the handler saw `n` items. */
function items (seen: number[], client: ContractClient<typeof feed>, n: number): Promise<void> {
  if (seen.length >= n) return Promise.resolve()
  return deadline(new Promise((resolve) => { const stop = client.on('item', () => { if (seen.length >= n) { stop(); resolve() } }) }), `${n} items, got ${JSON.stringify(seen)}`)
}

/** The server cuts every connection (no close frame) and resolves once the client noticed. */
async function cut (server: Server, client: ContractClient<typeof feed>): Promise<void> {
  const lost = reach(client, 'reconnecting')
  for (const socket of server.sockets) socket.terminate()
  await lost
}

t.test('a cut connection: the client resumes by itself and the handler sees exactly the missed publications, then live', async (t) => {
  const server = await serve(t)
  const { client, items: seen, recoveries, recovery } = follow(t, server.port)
  t.same(await recovery(), { topic: 'news', recovered: 0 }, 'a fresh subscription')
  publish(server, 1, 3)
  await items(seen, client, 3)
  await cut(server, client)
  // the retry waits for its timer: these are published while the client is away
  publish(server, 4, 8)
  t.same(await recovery(), { topic: 'news', recovered: 5 }, 'onRecovery reports the 5 missed')
  await items(seen, client, 8)
  publish(server, 9, 10)
  await items(seen, client, 10)
  t.same(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'each publication once, in order, across the cut')
  const epoch = client.positions.news[0]
  t.same(client.positions, { news: [epoch, 10] })

  // a second cut with nothing missed
  await cut(server, client)
  t.same(await recovery(), { topic: 'news', recovered: 0 })
  publish(server, 11, 11)
  await items(seen, client, 11)
  t.same(seen.slice(10), [11])
  t.same(recoveries, [{ topic: 'news', recovered: 0 }, { topic: 'news', recovered: 5 }, { topic: 'news', recovered: 0 }])
})

t.test('missed more than the history keeps: onRecovery says too-old, and live delivery goes on', async (t) => {
  const server = await serve(t, { maxMessages: 3 })
  const { client, items: seen, recovery } = follow(t, server.port)
  await recovery()
  publish(server, 1, 1)
  await items(seen, client, 1)
  await cut(server, client)
  publish(server, 2, 6)
  t.same(await recovery(), { topic: 'news', recovered: false, reason: 'too-old' })
  publish(server, 7, 7)
  await items(seen, client, 2)
  t.same(seen, [1, 7], 'nothing of what was lost is made up; live goes on')
})

t.test('after a server restart (a new store: a new epoch) onRecovery says epoch, and live delivery goes on', async (t) => {
  const first = await serve(t)
  const { client, items: seen, recovery } = follow(t, first.port)
  await recovery()
  publish(first, 1, 2)
  await items(seen, client, 2)
  const before = client.positions.news
  const lost = reach(client, 'reconnecting')
  await first.app.close()
  t.match(await lost, { code: 1001 }, 'the server went away')
  const second = await serve(t, { port: first.port })
  t.same(await recovery(), { topic: 'news', recovered: false, reason: 'epoch' })
  t.not(client.positions.news[0], before[0], 'the client moved to the new epoch')
  publish(second, 3, 3)
  await items(seen, client, 3)
  t.same(seen, [1, 2, 3])
})

t.test('publications keep flowing while the store is read: the handler sees each once, in order; a failing store costs a reconnection, not a publication', async (t) => {
  const adapter = new SlowHistoryAdapter()
  const server = await serve(t, { adapter })
  const store = adapter.store!
  const { client, items: seen, recovery } = follow(t, server.port)
  t.same(await recovery(), { topic: 'news', recovered: 0 })
  publish(server, 1, 3)
  await items(seen, client, 3)
  await cut(server, client)
  publish(server, 4, 5)
  store.reads.closed = true
  await store.reads.arrived()
  // the client is back and its read is in flight: these are live, and in the stream
  publish(server, 6, 8)
  store.reads.open()
  // the store read after 6..8 reached it: the replay carries 4..8, and the server drops the held live 6..8
  t.same(await recovery(), { topic: 'news', recovered: 5 })
  await items(seen, client, 8)
  t.same(seen, [1, 2, 3, 4, 5, 6, 7, 8], 'each once, in order, across the seam')

  store.failReads = true
  await cut(server, client)
  publish(server, 9, 9)
  const refused = await deadline(new Promise((resolve) => {
    const stop = client.onState((state) => { if (state.state === 'reconnecting' && state.code === 1013) { stop(); resolve(state) } })
  }), 'a close with 1013')
  t.match(refused, { state: 'reconnecting', code: 1013 }, 'the server could not read the store: Try Again Later')
  store.failReads = false
  t.same(await recovery(), { topic: 'news', recovered: 1 }, 'the next connection recovered what the refused one could not')
  publish(server, 10, 10)
  await items(seen, client, 10)
  t.same(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
})

t.test('socket.publish() on a topic with history reaches the publisher too: its client sees no gap, with or without self', async (t) => {
  const server = await serve(t)
  const ann = follow(t, server.port)
  const bob = follow(t, server.port)
  await Promise.all([ann.recovery(), bob.recovery()])
  ann.client.send('hello', { self: false })
  await items(ann.items, ann.client, 1)
  await items(bob.items, bob.client, 1)
  publish(server, 1, 1)
  await items(ann.items, ann.client, 2)
  await items(bob.items, bob.client, 2)
  t.same([ann.items, bob.items], [[0, 1], [0, 1]], 'both saw the socket\'s publication and the app\'s')
  ann.client.send('hello', { self: true })
  await items(ann.items, ann.client, 3)
  publish(server, 2, 2)
  await items(ann.items, ann.client, 4)
  t.same(ann.items, [0, 1, 0, 2])
  t.same(ann.recoveries, [{ topic: 'news', recovered: 0 }], 'the publisher\'s client saw every offset')
  t.same(bob.recoveries, [{ topic: 'news', recovered: 0 }], 'the other subscriber saw every offset')
})
