// Helpers of the topic history tests: a Fastify app with `history` on, a `ws` client that
// collects JSON messages, and stores whose reads or deliveries wait until the test lets them go.
import { once } from 'node:events'
import { WebSocket as WsClient } from 'ws'
import type { FastifyInstance } from 'fastify'
import {
  MemoryTopicAdapter, MemoryTopicHistory, type HistoryHost, type HistoryOptions, type HistoryPluginOptions, type HistoryPosition,
  type HistoryRead, type StreamPublication, type TopicHistory, type WebSocketPluginOptions
} from '../../lib/index.js'
import { deadline, server } from '../hostile/helpers.js'

export type Message = Record<string, unknown> & { type: string }

export interface JsonClient {
  ws: WsClient
  got: Message[]
  /** the first n messages, once they arrived */
  next: (n: number) => Promise<Message[]>
  closed: Promise<[number, string]>
}

export function jsonClient (url: string): Promise<JsonClient> {
  const ws = new WsClient(url, { perMessageDeflate: false })
  const got: Message[] = []
  let waiter: (() => void) | undefined
  ws.on('message', (data: Buffer) => { got.push(JSON.parse(data.toString())); waiter?.() })
  const closed = new Promise<[number, string]>((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve([code, reason.toString()])))
  const next = (n: number): Promise<Message[]> => deadline(new Promise((resolve) => {
    const check = (): void => { if (got.length >= n) { waiter = undefined; resolve(got.slice(0, n)) } }
    waiter = check
    check()
  }), 5000, `${n} message(s), got ${JSON.stringify(got)}`)
  return new Promise((resolve, reject) => { ws.once('open', () => resolve({ ws, got, next, closed })); ws.once('error', reject) })
}

export async function closeClient (client: JsonClient): Promise<void> {
  if (client.ws.readyState === WsClient.CLOSED) return
  client.ws.close()
  await once(client.ws, 'close')
}

/** The URL of a socket that subscribes to `topic`, resuming from `positions` ({ topic: [epoch, offset] }). */
export function resumeUrl (base: string, topic: string, positions?: Record<string, [string, number]>): string {
  const url = `${base}/sub/${encodeURIComponent(topic)}`
  return positions === undefined ? url : `${url}?resume=${encodeURIComponent(JSON.stringify(positions))}`
}

/**
 * An app with `history` and the routes of the tests: /sub/:topic subscribes (resuming per the
 * `resume` parameter), /pub/:topic publishes every message it receives (JSON) to the topic.
 */
export async function historyApp (t: { teardown: (fn: () => unknown) => void }, history: boolean | HistoryPluginOptions, extra: WebSocketPluginOptions = {}, routes?: (app: FastifyInstance) => void) {
  const started = await server({ history, ...extra }, (app: FastifyInstance) => {
    routes?.(app)
    app.ws('/sub/:topic', (socket, request) => {
      socket.subscribe((request.params as { topic: string }).topic)
    })
    app.ws('/pub/:topic', (socket, request) => {
      const topic = (request.params as { topic: string }).topic
      socket.subscribe(topic)
      socket.on('message', (data: Buffer) => { socket.publish(topic, JSON.parse(data.toString())) })
    })
  })
  t.teardown(() => started.app.close())
  return { ...started, base: `ws://127.0.0.1:${started.port}` }
}

/** Wait until `app` has `n` local subscribers of `topic`. */
export async function subscribers (app: FastifyInstance, topic: string, n: number): Promise<void> {
  const until = Date.now() + 5000
  while (app.subscriberCount(topic) !== n) {
    if (Date.now() > until) throw new Error(`${topic} never had ${n} subscribers`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** A gate: calls wait on it until the test opens it. */
export class Gate {
  private waiting: Array<() => void> = []
  /** resolves when a call starts waiting */
  private arrivals: Array<() => void> = []
  closed = true
  wait (): Promise<void> {
    if (!this.closed) return Promise.resolve()
    for (const arrived of this.arrivals.splice(0)) arrived()
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  arrived (): Promise<void> {
    if (this.waiting.length > 0) return Promise.resolve()
    return deadline(new Promise((resolve) => this.arrivals.push(resolve)), 5000, 'a call waiting at the gate')
  }

  open (): void {
    this.closed = false
    for (const go of this.waiting.splice(0)) go()
  }
}

/**
 * The in-process store behind asynchronous calls, as a store that talks to a server is: read()
 * and position() answer once `reads` opens; with `deliveries` closed, publications are kept at
 * append() but delivered only once it opens (as a store that delivers from pub/sub, behind its
 * own reads). `failReads` makes read() reject.
 */
export class SlowHistory implements TopicHistory {
  readonly inner: MemoryTopicHistory
  readonly reads = new Gate()
  readonly deliveries = new Gate()
  failReads = false
  private host: HistoryHost | null = null
  private readonly pending: StreamPublication[] = []
  private draining = false

  constructor (options: HistoryOptions) {
    this.inner = new MemoryTopicHistory(options)
    this.reads.open()
    this.deliveries.open()
  }

  init (host: HistoryHost): Promise<void> {
    this.host = host
    this.inner.init({ deliver: (publication) => { this.pending.push(publication); this.drain() }, onError: host.onError })
    return Promise.resolve()
  }

  private drain (): void {
    if (this.draining) return
    this.draining = true
    this.deliveries.wait().then(() => {
      this.draining = false
      for (const publication of this.pending.splice(0)) this.host!.deliver(publication)
    }, () => {})
  }

  append (topic: string, data: string): void { this.inner.append(topic, data) }

  async read (topic: string, since: HistoryPosition): Promise<HistoryRead> {
    await this.reads.wait()
    if (this.failReads) throw Object.assign(new Error('store down'), { code: 'TEST_STORE_DOWN' })
    return this.inner.read(topic, since)
  }

  async position (topic: string): Promise<HistoryPosition> {
    await this.reads.wait()
    return this.inner.position(topic)
  }

  close (): Promise<void> { return this.inner.close() }
}

/** An in-process adapter that brings its own (slow) history store, as the Redis adapter does. */
export class SlowHistoryAdapter extends MemoryTopicAdapter {
  store: SlowHistory | null = null
  history (options: HistoryOptions): TopicHistory {
    return (this.store = new SlowHistory(options))
  }
}
