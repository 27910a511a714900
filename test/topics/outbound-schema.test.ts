// No path leaks what a route's schema.outbound strips: broadcast() and publish() serialize each
// object through the schema of the subscriber's route, once per distinct serializer.
import t from 'tap'
import Fastify from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { broadcast, memoryAdapter, type TopicAdapter, type TopicAdapterHost } from '../../lib/index.js'
import { deadline } from '../hostile/helpers.js'

const Public = { type: 'object', properties: { id: { type: 'number' }, text: { type: 'string' } } }

async function start (t: { teardown: (fn: () => unknown) => void }, adapter?: TopicAdapter) {
  const app = Fastify()
  let serializations = 0
  await app.register(websocket, adapter === undefined ? {} : { adapter })
  // a route serializer compiler that counts its calls (keeps the schema's properties only)
  const counting = ({ schema }: { schema: unknown }) => {
    return (value: unknown) => {
      serializations++
      const v = value as Record<string, unknown>
      const out: Record<string, unknown> = {}
      for (const key of Object.keys((schema as { properties: object }).properties)) if (key in v) out[key] = v[key]
      return JSON.stringify(out)
    }
  }
  app.ws('/public/:topic', { schema: { outbound: Public } }, (socket, request) => { socket.subscribe((request.params as { topic: string }).topic) })
  app.ws('/counted/:topic', { schema: { outbound: Public }, serializerCompiler: counting }, (socket, request) => { socket.subscribe((request.params as { topic: string }).topic) })
  app.ws('/open/:topic', (socket, request) => { socket.subscribe((request.params as { topic: string }).topic) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, base: `ws://127.0.0.1:${port}`, serializations: () => serializations }
}

function open (url: string): Promise<{ ws: WsClient, next: () => Promise<string> }> {
  const ws = new WsClient(url)
  const got: string[] = []
  const waiters: Array<() => void> = []
  ws.on('message', (data: Buffer) => { got.push(data.toString()); waiters.shift()?.() })
  const next = async (): Promise<string> => {
    if (got.length === 0) await deadline(new Promise<void>((resolve) => waiters.push(resolve)), 5000, 'a message')
    return got.shift()!
  }
  return new Promise((resolve, reject) => { ws.once('open', () => resolve({ ws, next })); ws.once('error', reject) })
}

t.test("broadcast() serializes through each socket's schema.outbound", async (t) => {
  const { app, base } = await start(t)
  const [pub, plain] = await Promise.all([open(`${base}/public/b`), open(`${base}/open/b`)])
  const until = Date.now() + 5000
  while (app.websocketConnections.size < 2 && Date.now() < until) await new Promise((resolve) => setImmediate(resolve))
  t.equal(broadcast(app.websocketConnections, { id: 7, text: 'hi', secret: 'password' }), 2)
  t.same(JSON.parse(await pub.next()), { id: 7, text: 'hi' }, 'the schema route gets what its schema allows')
  t.same(JSON.parse(await plain.next()), { id: 7, text: 'hi', secret: 'password' }, 'a route without schema gets the object as JSON')
  pub.ws.close()
  plain.ws.close()
})

t.test('a publication to subscribers of several routes is serialized once per distinct serializer', async (t) => {
  const { app, base, serializations } = await start(t)
  const clients = await Promise.all([
    open(`${base}/counted/p`), open(`${base}/counted/p`), open(`${base}/counted/p`),
    open(`${base}/public/p`), open(`${base}/open/p`)
  ])
  const until = Date.now() + 5000
  while (app.subscriberCount('p') < 5 && Date.now() < until) await new Promise((resolve) => setImmediate(resolve))
  t.equal(app.publish('p', { id: 1, text: 'news', secret: 's3' }), 5)
  const got = await Promise.all(clients.map((c) => c.next()))
  t.same(got.map((m) => JSON.parse(m)), [
    { id: 1, text: 'news' }, { id: 1, text: 'news' }, { id: 1, text: 'news' }, { id: 1, text: 'news' },
    { id: 1, text: 'news', secret: 's3' }
  ])
  t.equal(serializations(), 1, "the counted route's serializer ran once for its three subscribers")
  for (const c of clients) c.ws.close()
})

t.test("an object published in another process is serialized again through the subscriber's schema", async (t) => {
  let host: TopicAdapterHost | undefined
  const adapter = memoryAdapter()
  const init = adapter.init.bind(adapter)
  adapter.init = (h) => { host = h; return init(h) }
  const { app, base } = await start(t, adapter)
  const [pub, plain] = await Promise.all([open(`${base}/public/r`), open(`${base}/open/r`)])
  const until = Date.now() + 5000
  while (app.subscriberCount('r') < 2 && Date.now() < until) await new Promise((resolve) => setImmediate(resolve))
  host!.deliver({ topic: 'r', payload: Buffer.from('{"id":2,"text":"far","secret":"x"}'), binary: false, json: true })
  t.same(JSON.parse(await pub.next()), { id: 2, text: 'far' })
  t.same(JSON.parse(await plain.next()), { id: 2, text: 'far', secret: 'x' })
  pub.ws.close()
  plain.ws.close()
})
