/**
 * The topics of one process (publish/subscribe): which local sockets are subscribed to which
 * topic, local delivery, and the adapter that carries publications to other processes
 * (./adapter.ts). A publication is framed once (once per distinct serializer for JSON) and the
 * same bytes are written to every local subscriber, in order with what each socket already
 * queued, under each socket's own maxBufferedAmount policy; everything a socket receives in
 * one tick leaves in one write (../connection/outlet.ts).
 *
 * The adapter is told of a topic's first local subscriber (subscribe) and of its last leaving
 * (unsubscribe), of every local publication (publish), and hands publications of other
 * processes to deliver(). Its failures never reach the caller of publish() or subscribe():
 * they are counted (`adapterErrors`), emitted as 'adapterError' and logged.
 */
import { EventEmitter } from 'node:events'
import type { WebSocket } from '../connection/connection.js'
import { Fanout } from '../connection/broadcast.js'
import { payloadKind } from '../connection/payload.js'
import { argumentError } from '../protocol/errors.js'
import type { TopicAdapter, TopicAdapterHost, TopicPublication } from './adapter.js'
import { MemoryTopicAdapter } from './memory-adapter.js'

/** Longest topic name, in UTF-16 code units (a bound on memory and on adapter channel names). */
export const MAX_TOPIC_LENGTH = 1024

export interface PublishOptions {
  /** true: a binary message; false: text (bytes must be UTF-8). Default: from the data's type */
  binary?: boolean
  /** a local socket not to deliver to (the publisher) */
  except?: WebSocket
}

export interface TopicHubOptions {
  /** carries publications to other processes; default: in-process only */
  adapter?: TopicAdapter
  /** where adapter failures are logged (a pino-style logger); default: not logged */
  log?: { warn: (obj: object, msg: string) => void }
}

export type AdapterError = Error & { code?: string }

export function checkTopic (topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length === 0 || topic.length > MAX_TOPIC_LENGTH) {
    throw argumentError('type', 'FST_ERR_WS_INVALID_TOPIC', `a topic is a non-empty string of at most ${MAX_TOPIC_LENGTH} characters`)
  }
}

function isPromise (value: unknown): value is Promise<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as Promise<unknown>).then === 'function'
}

export class TopicHub extends EventEmitter {
  readonly adapter: TopicAdapter
  /** adapter failures so far (publications that may not have reached other processes) */
  adapterErrors = 0
  private readonly subscribers = new Map<string, Set<WebSocket>>()
  private readonly log: TopicHubOptions['log']
  /** the in-process adapter forwards nothing: publications skip it */
  private readonly forwards: boolean
  private readonly host: TopicAdapterHost

  constructor (options: TopicHubOptions = {}) {
    super()
    this.adapter = options.adapter ?? new MemoryTopicAdapter()
    this.forwards = !(this.adapter instanceof MemoryTopicAdapter)
    this.log = options.log
    this.host = {
      deliver: (publication) => { this.deliver(publication) },
      onError: (error) => { this.adapterFailed(error) },
      localCount: (topic) => this.subscriberCount(topic)
    }
  }

  /** Start the adapter (connect): once, before the first subscription. */
  init (): void | Promise<void> {
    return this.adapter.init(this.host)
  }

  /** Release the adapter's connections and timers. */
  async close (): Promise<void> {
    this.subscribers.clear()
    await this.adapter.close()
  }

  /**
   * Subscribe `socket` (its set of topics is `mine`) to `topic`; false when it already was.
   * The adapter hears of a topic's first local subscriber.
   */
  add (socket: WebSocket, topic: unknown, mine: Set<string>): boolean {
    checkTopic(topic)
    if (mine.has(topic)) return false
    mine.add(topic)
    let set = this.subscribers.get(topic)
    if (set === undefined) {
      this.subscribers.set(topic, set = new Set())
      set.add(socket)
      this.callAdapter(() => this.adapter.subscribe(topic))
    } else {
      set.add(socket)
    }
    return true
  }

  /** Unsubscribe `socket` from `topic`; false when it was not subscribed. */
  remove (socket: WebSocket, topic: unknown, mine: Set<string>): boolean {
    checkTopic(topic)
    if (!mine.delete(topic)) return false
    this.leave(socket, topic)
    return true
  }

  /** The socket closed: every subscription of it ends. */
  removeAll (socket: WebSocket, mine: Set<string>): void {
    for (const topic of mine) this.leave(socket, topic)
    mine.clear()
  }

  private leave (socket: WebSocket, topic: string): void {
    const set = this.subscribers.get(topic)
    if (set === undefined || !set.delete(socket) || set.size > 0) return
    this.subscribers.delete(topic)
    this.callAdapter(() => this.adapter.unsubscribe(topic))
  }

  /** Local subscribers of `topic` (this process). */
  subscriberCount (topic: string): number {
    return this.subscribers.get(topic)?.size ?? 0
  }

  /** Topics with at least one local subscriber. */
  topics (): IterableIterator<string> {
    return this.subscribers.keys()
  }

  /** Subscribers of `topic` across every process the adapter reaches (presence). */
  presence (topic: string): Promise<number> {
    checkTopic(topic)
    return this.adapter.subscriberCount(topic)
  }

  /**
   * Publish to the local subscribers of `topic` (but `options.except`) and, through the
   * adapter, to the other processes. Data as send() takes it: a string as text, bytes as binary,
   * a plain object or array as JSON (through each subscriber's schema.outbound). Returns how many
   * local subscribers accepted it.
   */
  publish (topic: string, data: unknown, options: PublishOptions = {}): number {
    checkTopic(topic)
    const kind = payloadKind(data, 'publish')
    const binary = options.binary
    if (binary !== undefined && typeof binary !== 'boolean') {
      throw argumentError('type', 'FST_ERR_WS_INVALID_PUBLISH_OPTIONS', 'publish() options: binary must be a boolean')
    }
    const set = this.subscribers.get(topic)
    if (set === undefined && !this.forwards) return 0
    const fanout = new Fanout(data, kind, { binary })
    const accepted = set === undefined ? 0 : fanout.sendTo(set, options.except)
    if (this.forwards) this.forward(topic, fanout, kind, binary)
    return accepted
  }

  /** Hand a local publication to the adapter, as bytes. */
  private forward (topic: string, fanout: Fanout, kind: ReturnType<typeof payloadKind>, binary: boolean | undefined): void {
    let publication: TopicPublication
    if (kind === 'json') {
      publication = { topic, payload: Buffer.from(fanout.text()), binary: binary ?? false, json: true }
    } else {
      // the frame is made once: its payload bytes are what crosses (no copy)
      const message = fanout.frame()
      publication = { topic, payload: message.bytes, binary: message.binary }
    }
    try {
      this.adapter.publish(publication)
    } catch (err) {
      this.adapterFailed(err as AdapterError)
    }
  }

  /** A publication from another process: to the local subscribers only. */
  deliver (publication: TopicPublication): number {
    const set = this.subscribers.get(publication.topic)
    if (set === undefined) return 0
    const fanout = publication.json === true && !publication.binary
      ? Fanout.fromJsonText(publication.payload.toString('utf8'))
      : new Fanout(publication.payload, 'binary', { binary: publication.binary })
    try {
      return fanout.sendTo(set, undefined)
    } catch (err) {
      // a malformed publication (text that is not UTF-8, JSON that does not parse)
      this.adapterFailed(err as AdapterError)
      return 0
    }
  }

  /** Run an adapter call; a throw or a rejection is an adapter failure, never the caller's. */
  private callAdapter (call: () => unknown): void {
    try {
      const result = call()
      if (isPromise(result)) result.then(undefined, (err: unknown) => { this.adapterFailed(err as AdapterError) })
    } catch (err) {
      this.adapterFailed(err as AdapterError)
    }
  }

  private adapterFailed (error: AdapterError): void {
    this.adapterErrors++
    this.log?.warn({ err: error, code: error?.code }, 'websocket topic adapter error')
    if (this.listenerCount('adapterError') > 0) {
      try { this.emit('adapterError', error) } catch { /* a listener's failure is not the adapter's */ }
    }
  }
}
