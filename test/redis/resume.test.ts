// Resumable streams across instances: Fastify instances in separate processes sharing one real
// redis-server, history kept in Redis, real WebSocket clients (ws) that leave one instance and
// resume on another.
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { WebSocket as WsClient } from 'ws'
import { IpcChild } from './ipc-child.js'
import { redisFor } from './redis-server.js'

const INSTANCE = fileURLToPath(new URL('./history-instance.ts', import.meta.url))

type Message = { type: string, topic: string, epoch: string, offset: number, recovered?: number | false, reason?: string, data?: { n: number } }

/** A ws client of /sub/:topic that keeps every JSON message it receives. */
class Subscriber {
  readonly got: Message[] = []
  private waiter: (() => void) | null = null
  private constructor (readonly ws: WsClient) {
    ws.on('message', (data: Buffer) => { this.got.push(JSON.parse(data.toString()) as Message); this.waiter?.() })
  }

  static async open (t: Test, port: number, topic: string, resume?: Record<string, [string, number]>): Promise<Subscriber> {
    const query = resume === undefined ? '' : `?resume=${encodeURIComponent(JSON.stringify(resume))}`
    const ws = new WsClient(`ws://127.0.0.1:${port}/sub/${topic}${query}`)
    const subscriber = new Subscriber(ws)
    t.teardown(() => { ws.terminate() })
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    return subscriber
  }

  publications (): Message[] {
    return this.got.filter((m) => m.type === 'publication')
  }

  /** Resolve when `check()` holds, checked on every message (deadline 20 s). */
  until (check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiter = null; reject(new Error(`deadline: ${what}; got ${JSON.stringify(this.got.slice(-3))}`)) }, 20_000)
      this.waiter = () => {
        if (!check()) return
        clearTimeout(timer)
        this.waiter = null
        resolve()
      }
    })
  }

  async close (): Promise<void> {
    const closed = new Promise((resolve) => this.ws.once('close', resolve))
    this.ws.close()
    await closed
  }
}

async function instances (t: Test, n: number, env: NodeJS.ProcessEnv): Promise<Array<{ child: IpcChild, port: number }>> {
  const started = await Promise.all(Array.from({ length: n }, (_, i) => IpcChild.start(INSTANCE, { name: `instance ${i}`, env })))
  t.teardown(() => Promise.all(started.map((c) => c.kill())))
  return started.map((child) => ({ child, port: Number(child.ready.port) }))
}

// one redis-server and three instances for every test of this file, each test on its own topic
const server = await redisFor(t)
const [a, b, c] = await instances(t, 3, { REDIS_URL: server.url })

/** A subscriber on the first instance that saw `seen` publications of `topic` (from the third) and left. */
async function leftAfter (t: Test, topic: string, seen: number) {
  // a subscriber that stays on the publishing instance: publications are kept once it has them
  const witness = await Subscriber.open(t, c.port, topic)
  const leaving = await Subscriber.open(t, a.port, topic)
  await leaving.until(() => leaving.got.length === 1, 'subscribed')
  const fresh = leaving.got[0]
  t.match(fresh, { type: 'subscribed', topic, offset: 0, recovered: 0 }, 'a fresh subscription')
  await c.child.request('publish', { topic, count: seen, from: 1 })
  await leaving.until(() => leaving.publications().length === seen, `the first ${seen}`)
  t.same(leaving.publications().map((m) => [m.offset, m.data?.n, m.epoch]), Array.from({ length: seen }, (_, i) => [i + 1, i + 1, fresh.epoch]))
  await leaving.close()
  return { witness, epoch: fresh.epoch }
}

t.test('a subscriber that missed N publications resumes on another instance: exactly those N in order, then live with no gap and no duplicate at the seam, publications flowing during the replay', async (t) => {
  const { witness, epoch } = await leftAfter(t, 'news', 10)
  // missed while away
  await c.child.request('publish', { topic: 'news', count: 25, from: 11 })
  await witness.until(() => witness.publications().length === 35, 'the witness has all 35')
  // publications keep flowing while the subscriber comes back
  await c.child.request('flow', { topic: 'news', from: 36 })
  const back = await Subscriber.open(t, b.port, 'news', { news: [epoch, 10] })
  await back.until(() => back.got.length > 0 && back.publications().some((m) => m.offset > back.got[0].offset + 5), 'live publications after the replay')
  const { last } = await c.child.request('stop') as { last: number }
  await back.until(() => back.publications().at(-1)?.offset === last, 'the last one')
  const [subscribed, ...rest] = back.got
  t.match(subscribed, { type: 'subscribed', topic: 'news', epoch }, 'the same stream')
  t.ok(subscribed.offset >= 35, 'the replay reaches at least the publications made while away')
  t.equal(subscribed.recovered, subscribed.offset - 10, 'recovered: every publication after the position')
  t.ok(rest.every((m) => m.type === 'publication' && m.epoch === epoch))
  t.same(rest.map((m) => m.offset), Array.from({ length: last - 10 }, (_, i) => 11 + i), 'offsets 11..last: nothing twice, nothing missing, in order')
  t.same(rest.map((m) => m.data?.n), rest.map((m) => m.offset), 'each the publication of its offset')
  t.same(rest.slice(0, 25).map((m) => m.data?.n), Array.from({ length: 25 }, (_, i) => 11 + i), 'first exactly the 25 missed')
})

t.test('a resume past the history window: recovered false, reason too-old, then live from the current position', async (t) => {
  const { witness, epoch } = await leftAfter(t, 'sport', 3)
  // the instances keep 100 (maxMessages): publication 4 is gone
  await c.child.request('publish', { topic: 'sport', count: 101, from: 4 })
  await witness.until(() => witness.publications().length === 104, 'the witness has all 104')
  const back = await Subscriber.open(t, b.port, 'sport', { sport: [epoch, 3] })
  await back.until(() => back.got.length === 1, 'subscribed')
  t.same(back.got[0], { type: 'subscribed', topic: 'sport', epoch, offset: 104, recovered: false, reason: 'too-old' })
  await c.child.request('publish', { topic: 'sport', count: 1, from: 105 })
  await back.until(() => back.got.length === 2, 'the next one')
  t.same(back.got[1], { type: 'publication', topic: 'sport', epoch, offset: 105, data: { n: 105 } }, 'live continues, nothing replayed')
})

t.test('a resume after Redis lost the stream (FLUSHALL): recovered false, reason epoch, then the new stream from its start', async (t) => {
  const { epoch } = await leftAfter(t, 'weather', 3)
  const redis = new Redis(server.url)
  t.teardown(() => { redis.disconnect() })
  await redis.flushall()
  const back = await Subscriber.open(t, b.port, 'weather', { weather: [epoch, 3] })
  await back.until(() => back.got.length === 1, 'subscribed')
  const [subscribed] = back.got
  t.match(subscribed, { type: 'subscribed', topic: 'weather', offset: 0, recovered: false, reason: 'epoch' })
  t.not(subscribed.epoch, epoch, 'a new epoch')
  await c.child.request('publish', { topic: 'weather', count: 1, from: 4 })
  await back.until(() => back.got.length === 2, 'the next one')
  t.same(back.got[1], { type: 'publication', topic: 'weather', epoch: subscribed.epoch, offset: 1, data: { n: 4 } })
})
