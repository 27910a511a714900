// The Redis adapter through the plugin's public API, two Fastify apps in this process.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import websocket from '../../lib/index.js'
import { redisAdapter, RedisAdapterErrorCode, type RedisAdapterError, type RedisTopicAdapter } from '../../lib/redis.js'
import { Client } from './client.js'
import { redisFor } from './redis-server.js'

async function appWith (t: Test, adapter: RedisTopicAdapter): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify()
  await app.register(websocket, { adapter })
  app.ws<{ Params: { topic: string } }>('/topics/:topic', (socket, request) => {
    socket.subscribe(request.params.topic)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return { app, port: (app.server.address() as { port: number }).port }
}

t.test('app.publish on one app reaches the subscribers of another; app.presence counts both; app.close releases the connections', async (t) => {
  const server = await redisFor(t)
  const inspect = new Redis(server.url)
  t.teardown(() => { inspect.disconnect() })
  const clientsBefore = String(await inspect.client('LIST')).trim().split('\n').length
  const a = await appWith(t, redisAdapter({ url: server.url }))
  const b = await appWith(t, redisAdapter({ url: server.url }))
  const onA = await Client.open(t, a.port, 'news')
  const onB = await Client.open(t, b.port, 'news')
  // b's hub subscribes when b's route handler has run, which the client does not see: presence
  // is asked again (each a round trip) until b's answer counts, which also proves b holds the channel
  let count = 0
  for (let attempt = 0; attempt < 100 && count !== 2; attempt++) count = await a.app.presence('news')
  t.equal(count, 2, 'one subscriber on each app')
  t.equal(a.app.subscriberCount('news'), 1, 'the local count stays local')
  a.app.publish('news', { headline: 'hello' })
  a.app.publish('news', Buffer.from([1, 2, 3]))
  await Promise.all([onA.until(2), onB.until(2)])
  t.same(onB.texts(), ['{"headline":"hello"}', 'bin:010203'], 'an object as JSON text, bytes as binary')
  t.same(onA.texts(), onB.texts(), 'local and remote subscribers receive the same')
  await b.app.close()
  await a.app.close()
  t.equal(String(await inspect.client('LIST')).trim().split('\n').length, clientsBefore, 'every adapter connection closed with its app')
})

t.test('one adapter given to two registrations: the second register() rejects with a code', async (t) => {
  const server = await redisFor(t)
  const adapter = redisAdapter({ url: server.url })
  await appWith(t, adapter)
  const second = Fastify()
  t.teardown(() => second.close())
  await t.rejects(async () => { await second.register(websocket, { adapter }) }, { code: RedisAdapterErrorCode.InUse })
})

t.test('Redis down: app.publish still reaches local subscribers; the outage is an adapterError event, never a throw', async (t) => {
  const server = await redisFor(t)
  const adapter = redisAdapter({ url: server.url })
  const { app, port } = await appWith(t, adapter)
  const local = await Client.open(t, port, 'room')
  const reported = once(app.websocketTopics, 'adapterError') as Promise<[RedisAdapterError]>
  await server.stop()
  const [error] = await reported
  t.match(error, { code: RedisAdapterErrorCode.Unavailable, recovered: false })
  t.doesNotThrow(() => app.publish('room', 'local only'))
  await local.until(1)
  t.same(local.texts(), ['local only'])
  await t.rejects(app.presence('room'), { code: RedisAdapterErrorCode.Unavailable })
  t.equal(adapter.stats.unforwarded, 1)
})
