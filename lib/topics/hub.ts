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
 *
 * Topics with history (resumable streams, ./history.ts): a publication is serialized once as JSON
 * text and appended to the history store, which gives it its offset and hands it back to
 * deliverStream(): the envelope is framed once and written to the local subscribers. The store
 * is the adapter's when it has one (`adapter.history()`), else the in-process one
 * (./memory-history.ts). A subscription is answered and replayed by ./resume.ts.
 */
import { EventEmitter } from 'node:events'
import type { WebSocket } from '../connection/connection.js'
import { Fanout, PreparedMessage } from '../connection/broadcast.js'
import { payloadKind } from '../connection/payload.js'
import { argumentError } from '../protocol/errors.js'
import type { TopicAdapter, TopicAdapterHost, TopicPublication } from './adapter.js'
import { publicationEnvelope } from './envelope.js'
import type { HistoryHost, HistoryOptions, HistoryPosition, StreamPublication, TopicHistory } from './history.js'
import { MemoryTopicAdapter } from './memory-adapter.js'
import { MemoryTopicHistory } from './memory-history.js'
import { Resumptions } from './resume.js'

/** Longest topic name, in UTF-16 code units (a bound on memory and on adapter channel names). */
export const MAX_TOPIC_LENGTH = 1024

export interface PublishOptions {
  /** true: a binary message; false: text (bytes must be UTF-8). Default: from the data's type */
  binary?: boolean
  /** a local socket not to deliver to (the publisher) */
  except?: WebSocket
}

/** Which topics keep a history, and its bounds (the plugin's `history` option, resolved). */
export interface TopicHubHistoryOptions extends HistoryOptions {
  /** the topics with history; default: every topic */
  readonly topics?: (topic: string) => boolean
  /** bytes the in-process store keeps across topics; default 64 MiB */
  readonly maxBytes?: number
}

export interface TopicHubOptions {
  /** carries publications to other processes; default: in-process only */
  adapter?: TopicAdapter
  /** keep a history of publications (resumable streams); default: none */
  history?: TopicHubHistoryOptions
  /** where adapter failures are logged (a pino-style logger); default: not logged */
  log?: { warn: (obj: object, msg: string) => void }
}

export type AdapterError = Error & { code?: string }

/** A publication being appended to the in-process store, which delivers it within append(). */
interface Appending {
  /** the publisher, not delivered to */
  readonly except: WebSocket | undefined
  /** local subscribers that accepted it */
  accepted: number
}

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
  /** the history store (null: no topic has history) */
  readonly history: TopicHistory | null
  private readonly historyTopics: ((topic: string) => boolean) | undefined
  /** the store is the adapter's: it carries history publications to the other processes itself */
  private readonly sharedHistory: boolean
  private readonly resumptions: Resumptions | null
  /** the in-process store: it delivers within append() */
  private readonly synchronous: boolean
  /** the publication being appended to the in-process store: its publisher and its count */
  private appending: Appending | null = null
  /** writing to subscribers: deliveries caused meanwhile (a listener that publishes) wait in the backlog */
  private delivering = false
  private backlog: Array<[StreamPublication, Appending | null]> | null = null

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
    const history = options.history
    const shared = history === undefined ? undefined : this.adapter.history?.({ maxMessages: history.maxMessages, maxAge: history.maxAge })
    this.sharedHistory = shared !== undefined
    this.history = history === undefined
      ? null
      : shared ?? new MemoryTopicHistory({ ...history, active: (topic) => this.subscribers.has(topic) })
    this.historyTopics = history?.topics
    this.synchronous = this.history instanceof MemoryTopicHistory
    this.resumptions = this.history === null
      ? null
      : new Resumptions({
        history: this.history,
        maxHeld: history!.maxMessages,
        synchronous: this.synchronous,
        onError: (error) => { this.adapterFailed(error) },
        serially: (write) => { this.serially(write) }
      })
  }

  /** Start the adapter (connect), then the history store: once, before the first subscription. */
  init (): void | Promise<void> {
    const started = this.adapter.init(this.host)
    const history = this.history
    if (history === null) return started
    const host: HistoryHost = {
      deliver: (publication) => { this.deliverStream(publication) },
      onError: (error) => { this.adapterFailed(error) }
    }
    return isPromise(started) ? started.then(() => history.init(host)) : history.init(host)
  }

  /** Release the history store's and the adapter's connections and timers. */
  async close (): Promise<void> {
    this.subscribers.clear()
    await this.history?.close()
    await this.adapter.close()
  }

  /** Whether publications on `topic` are kept in history (and reach subscribers in envelopes). */
  hasHistory (topic: string): boolean {
    return this.history !== null && (this.historyTopics === undefined || this.historyTopics(topic))
  }

  /**
   * Subscribe `socket` (its set of topics is `mine`) to `topic`; false when it already was.
   * The adapter hears of a topic's first local subscriber.
   */
  add (socket: WebSocket, topic: unknown, mine: Set<string>, since?: HistoryPosition): boolean {
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
    // a topic with history: `subscribed`, the replay after `since`, then live (./resume.ts)
    if (this.resumptions !== null && this.hasHistory(topic)) this.resumptions.start(socket, topic, since)
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
    this.resumptions?.drop(socket, topic)
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
    if (this.history !== null && this.hasHistory(topic)) return this.publishStream(topic, data, kind, binary, options.except)
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

  /**
   * A publication on a topic with history: its data serialized once as JSON text (a string as a
   * JSON string) and appended to the store, which delivers it with its offset. The in-process
   * store delivers within append(): the publisher (`except`) is skipped and the count is of the
   * local subscribers that accepted it. A store that delivers from pub/sub delivers later, to
   * every local subscriber, the publisher too (it cannot tell its own publications apart
   * cheaply), and the count is 0.
   */
  private publishStream (topic: string, data: unknown, kind: ReturnType<typeof payloadKind>, binary: boolean | undefined, except: WebSocket | undefined): number {
    if (kind === 'binary' || binary === true) {
      throw argumentError('type', 'FST_ERR_WS_HISTORY_BINARY', `topic ${JSON.stringify(topic)} keeps a history: its publications are JSON (a string, a plain object or an array), not binary`)
    }
    const text = JSON.stringify(data)
    const outer = this.appending
    const appending: Appending = { except, accepted: 0 }
    if (this.synchronous) this.appending = appending
    try {
      this.history!.append(topic, text)
    } catch (err) {
      this.adapterFailed(err as AdapterError)
    } finally {
      this.appending = outer
    }
    // an adapter without its own store: the other processes keep their own history of it
    if (this.forwards && !this.sharedHistory) this.callAdapter(() => this.adapter.publish({ topic, payload: Buffer.from(text), binary: false, json: true }))
    return appending.accepted
  }

  /** A publication with its offset, from the history store: its envelope, framed once, to the local subscribers. */
  deliverStream (publication: StreamPublication): void {
    const appending = this.appending
    if (this.delivering) {
      (this.backlog ??= []).push([publication, appending])
      return
    }
    this.serially(() => { this.writeStream(publication, appending) })
  }

  /**
   * Run `write` (a delivery, or a subscription's answer and replay); the deliveries it causes (a
   * socket's listener that publishes) wait until it is done, so that every subscriber receives a
   * topic's publications in offset order.
   */
  private serially (write: () => void): void {
    if (this.delivering) {
      write()
      return
    }
    this.delivering = true
    try {
      write()
      const backlog = this.backlog
      // the backlog may grow while it is written
      if (backlog !== null) for (let i = 0; i < backlog.length; i++) this.writeStream(backlog[i][0], backlog[i][1])
    } finally {
      this.delivering = false
      this.backlog = null
    }
  }

  private writeStream (publication: StreamPublication, appending: Appending | null): void {
    const set = this.subscribers.get(publication.topic)
    if (set === undefined) return
    const message = new PreparedMessage(publicationEnvelope(publication))
    const seams = this.resumptions!.on(publication.topic)
    const except = appending === null ? undefined : appending.except
    for (const socket of set) {
      if (socket === except) continue
      // a subscriber whose replay is in flight holds it (./resume.ts)
      if (seams !== undefined && this.resumptions!.hold(seams, socket, publication, message)) continue
      if (socket.sendPrepared(message) && appending !== null) appending.accepted++
    }
  }

  /** A publication from another process: to the local subscribers only. */
  deliver (publication: TopicPublication): number {
    if (this.history !== null && !this.sharedHistory && !publication.binary && this.hasHistory(publication.topic)) {
      // another process's publication on a topic with history (an adapter without a store of its
      // own): this process's store keeps it, with this process's offsets and epoch
      const text = publication.payload.toString('utf8')
      try {
        if (publication.json === true) JSON.parse(text)
        this.history.append(publication.topic, publication.json === true ? text : JSON.stringify(text))
      } catch (err) {
        this.adapterFailed(err as AdapterError)
      }
      return 0
    }
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
