/**
 * One Fastify instance of the multi-process tests, run as a child process (see ipc-child.ts).
 * The route is the pubsub example's: /topics/:topic subscribes the socket to :topic and
 * publishes what it sends. The Redis adapter is wrapped to report to the parent what the hub
 * asks of it (topics held) and what it reports (outages). Environment: REDIS_URL, SHARDED=1,
 * MAX_BUFFERED (bytes, the sockets' maxBufferedAmount).
 *
 * Requests: `settle { expect: { topic: count } }` waits until this instance's sockets per topic
 * are exactly `expect`, the hub has asked the adapter for exactly those topics and every
 * subscribe/unsubscribe command has been answered by Redis, then replies `{ topics }`;
 * `count { topic }` replies how many of the topic's sockets are open; `presence { topic }` the count across
 * instances; `stats` the adapter's counters.
 */
import { EventEmitter } from 'node:events'
import Fastify from 'fastify'
import websocket, { WebSocket } from '../../lib/index.js'
import { redisAdapter } from '../../lib/redis.js'
import type { TopicAdapter, TopicAdapterHost, TopicPublication } from '../../lib/topics/adapter.js'
import { notifyParent, serveIpc } from './ipc-child.js'

const changes = new EventEmitter()
const sockets = new Map<string, number>()
const members = new Map<string, Set<WebSocket>>()
const held = new Set<string>()
const inFlight = new Set<Promise<void>>()
const redis = redisAdapter({ url: process.env.REDIS_URL, sharded: process.env.SHARDED === '1' })

function track (result: void | Promise<void>): void {
  if (result === undefined) return
  inFlight.add(result)
  void result.finally(() => inFlight.delete(result))
}

/** The Redis adapter, observed: every call reaches it unchanged. */
const observed: TopicAdapter = {
  init: (host: TopicAdapterHost) => redis.init({
    deliver: (publication: TopicPublication) => host.deliver(publication),
    localCount: (topic: string) => host.localCount(topic),
    onError: (error: Error & { code?: string, recovered?: boolean, unforwarded?: number }) => {
      notifyParent({ type: 'adapter-error', code: error.code, recovered: error.recovered, unforwarded: error.unforwarded })
      host.onError(error)
    }
  }),
  subscribe: (topic) => { held.add(topic); changes.emit('change'); track(redis.subscribe(topic)) },
  unsubscribe: (topic) => { held.delete(topic); changes.emit('change'); track(redis.unsubscribe(topic)) },
  publish: (publication) => redis.publish(publication),
  subscriberCount: (topic) => redis.subscriberCount(topic),
  close: () => redis.close()
}

const app = Fastify()
const maxBufferedAmount = process.env.MAX_BUFFERED === undefined ? undefined : Number(process.env.MAX_BUFFERED)
await app.register(websocket, { adapter: observed, maxBufferedAmount })
app.ws<{ Params: { topic: string } }>('/topics/:topic', (socket, request) => {
  const { topic } = request.params
  socket.subscribe(topic)
  sockets.set(topic, (sockets.get(topic) ?? 0) + 1)
  members.get(topic)?.add(socket) ?? members.set(topic, new Set([socket]))
  changes.emit('change')
  socket.on('close', () => {
    members.get(topic)?.delete(socket)
    const left = (sockets.get(topic) ?? 1) - 1
    if (left === 0) sockets.delete(topic)
    else sockets.set(topic, left)
    changes.emit('change')
  })
  socket.on('message', (data, isBinary) => { socket.publish(topic, data, { binary: isBinary }) })
})
await app.listen({ host: '127.0.0.1', port: 0 })

function settled (expect: Record<string, number>): boolean {
  const topics = Object.keys(expect).filter((t) => expect[t] > 0)
  if (topics.length !== sockets.size || topics.length !== held.size) return false
  return topics.every((t) => sockets.get(t) === expect[t] && held.has(t))
}

serveIpc({
  async settle (message) {
    const expect = message.expect as Record<string, number>
    if (!settled(expect)) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { changes.off('change', check); reject(new Error(`not settled: sockets ${JSON.stringify([...sockets])}, held ${JSON.stringify([...held])}, expected ${JSON.stringify(expect)}`)) }, 15_000)
        function check (): void {
          if (!settled(expect)) return
          clearTimeout(timer)
          changes.off('change', check)
          resolve()
        }
        changes.on('change', check)
      })
    }
    while (inFlight.size > 0) await Promise.all(inFlight)
    return { topics: [...held] }
  },
  /** sockets of a topic still open (a socket being closed by its limit no longer counts) */
  count: (message) => ({ count: [...(members.get(String(message.topic)) ?? [])].filter((s) => s.readyState === WebSocket.OPEN).length }),
  presence: async (message) => ({ count: await app.presence(String(message.topic)) }),
  stats: () => ({ ...redis.stats })
})
notifyParent({ type: 'ready', port: (app.server.address() as { port: number }).port })
