/**
 * One Fastify instance of the multi-process history tests, run as a child process (see
 * ipc-child.ts): the plugin with `history` and the Redis adapter; /sub/:topic subscribes the
 * socket (resuming per its `resume` query parameter). Environment: REDIS_URL.
 *
 * Requests: `publish { topic, count, from }` publishes `{ n }` for n = from .. from + count - 1;
 * `flow { topic, from }` starts publishing `{ n }` from `from` on, one per millisecond, until
 * `stop`, which replies the last n published.
 */
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { redisAdapter } from '../../lib/redis.js'
import { notifyParent, serveIpc } from './ipc-child.js'

const app = Fastify()
await app.register(websocket, {
  adapter: redisAdapter({ url: process.env.REDIS_URL }),
  history: { maxMessages: 100 }
})
app.ws<{ Params: { topic: string } }>('/sub/:topic', (socket, request) => {
  socket.subscribe(request.params.topic)
})
await app.listen({ host: '127.0.0.1', port: 0 })

let flowing: { timer: NodeJS.Timeout, last: number } | null = null

serveIpc({
  publish (message) {
    const from = Number(message.from)
    for (let n = from; n < from + Number(message.count); n++) app.publish(String(message.topic), { n })
    return {}
  },
  flow (message) {
    const topic = String(message.topic)
    const state = { timer: setInterval(() => { app.publish(topic, { n: ++state.last }) }, 1), last: Number(message.from) - 1 }
    flowing = state
    return {}
  },
  stop () {
    if (flowing === null) return { last: 0 }
    clearInterval(flowing.timer)
    const last = flowing.last
    flowing = null
    return { last }
  }
})
notifyParent({ type: 'ready', port: (app.server.address() as { port: number }).port })
