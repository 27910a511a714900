// Topics over WebSocket, shared between instances through Redis when REDIS_URL is set.
// A socket on /topics/:topic is subscribed to :topic; every message it sends (text or binary) is
// published to :topic: delivered once to every other subscriber on every instance, same opcode
// and payload, never echoed to the sender.
// Run: node --import tsx examples/pubsub.ts   (HOST, PORT; default 127.0.0.1:3000; REDIS_URL optional)
import Fastify from 'fastify'
import websocket from '../lib/index.js'

export async function buildPubsub (env: NodeJS.ProcessEnv = process.env) {
  const app = Fastify({ logger: env.NODE_ENV === 'test' ? false : { level: env.LOG_LEVEL ?? 'info' } })
  // ioredis (an optional peer dependency) is loaded only when Redis is asked for
  const adapter = env.REDIS_URL === undefined
    ? undefined
    : (await import('../lib/redis.js')).redisAdapter({ url: env.REDIS_URL })
  await app.register(websocket, { adapter })

  app.ws<{ Params: { topic: string } }>('/topics/:topic', (socket, request) => {
    const { topic } = request.params
    socket.subscribe(topic)
    socket.on('message', (data, isBinary) => {
      socket.publish(topic, data, { binary: isBinary })
    })
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildPubsub()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
