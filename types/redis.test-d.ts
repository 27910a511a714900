// Type tests of fastify-rfc6455/redis, compiled by `tsc --noEmit` (npm test): positive uses, and
// `@ts-expect-error` lines that must stay errors.
import Fastify from 'fastify'
import { Cluster, Redis } from 'ioredis'
import websocket from '../lib/index.js'
import { redisAdapter, type RedisAdapterError, type RedisAdapterStats, type RedisTopicAdapter, type TopicAdapter } from '../lib/redis.js'

function expectType<T> (_value: T): void {}

const adapter = redisAdapter({ url: 'redis://127.0.0.1:6379', prefix: 'app', sharded: true, presenceTimeout: 500, maxPendingBytes: 1 << 20 })
expectType<RedisTopicAdapter>(adapter)
expectType<TopicAdapter>(adapter)
expectType<RedisAdapterStats>(adapter.stats)
expectType<number>(adapter.stats.unforwarded)
expectType<string>(adapter.channelOf('room'))
redisAdapter()
redisAdapter({ client: new Redis({ lazyConnect: true }) })
redisAdapter({ client: new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true }), sharded: true })
redisAdapter({ client: { host: '127.0.0.1', port: 6380, password: 'secret' } })

const app = Fastify()
await app.register(websocket, { adapter })
app.websocketTopics.on('adapterError', (error: RedisAdapterError) => {
  expectType<string>(error.code)
  expectType<number | undefined>(error.unforwarded)
  expectType<boolean | undefined>(error.recovered)
})
expectType<Promise<number>>(app.presence('room'))

// @ts-expect-error sharded is a boolean
redisAdapter({ sharded: 'yes' })
// @ts-expect-error presenceTimeout is a number of ms
redisAdapter({ presenceTimeout: '1s' })
// @ts-expect-error unknown option
redisAdapter({ channel: 'x' })
// @ts-expect-error url is a string
redisAdapter({ url: 6379 })
