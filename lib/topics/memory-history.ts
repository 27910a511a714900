/**
 * The in-process topic history (./history.ts): the last publications of each topic kept in a
 * ring per topic, in this process's memory. Synchronous: append() hands the publication to
 * host.deliver() before it returns, so the hub writes it to the local subscribers at once.
 *
 * Bounds (all three hold at every append):
 * - per topic, at most `maxMessages` publications, none older than `maxAge` ms (aged ones are
 *   dropped at the next append or read of the topic, and by a sweep every `maxAge` ms);
 * - across topics, at most `maxBytes` (default 64 MiB) counted as the JSON text's length plus
 *   ENTRY_OVERHEAD per publication and TOPIC_OVERHEAD per topic: over it, whole topics are
 *   forgotten, the least recently published first (never the one being appended to: that one
 *   drops its own oldest publications instead, keeping at least the newest).
 *
 * Epochs: a topic's stream gets a new epoch when it is created, that is, the first time it is
 * published to in this store, and again after it was forgotten (evicted by the byte bound, or
 * swept once all its publications aged out while it had no local subscriber). An epoch is the
 * store's random prefix (crypto, per store instance: a restarted process has new epochs) and a
 * counter, so no two streams of one store, nor of two stores, share an epoch.
 *
 * read() of a position is index arithmetic on the ring: no scan.
 */
import { randomBytes } from 'node:crypto'
import type { HistoryEntry, HistoryHost, HistoryOptions, HistoryPosition, HistoryRead, TopicHistory } from './history.js'

/** bytes counted per kept publication besides its JSON text (offset, time, ring slot) */
export const ENTRY_OVERHEAD = 32
/** bytes counted per topic besides its publications (record, map entry, name) */
export const TOPIC_OVERHEAD = 256
/** default bound on the bytes kept across topics: 64 MiB */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024

export interface MemoryHistoryOptions extends HistoryOptions {
  /** bytes kept across every topic; default 64 MiB */
  readonly maxBytes?: number
  /** whether `topic` has a local subscriber: such a topic is not swept when its publications aged out */
  readonly active?: (topic: string) => boolean
  /** the clock (ms); default Date.now */
  readonly now?: () => number
}

/** One topic's stream: a ring of its last publications. */
class Stream {
  readonly epoch: string
  /** offset of the last publication (0: none yet) */
  last = 0
  /** ring slots, grown up to `capacity` as publications come: offset o is at (o - 1) % capacity */
  private readonly data: Array<string | undefined> = []
  private readonly times: number[] = []
  private readonly capacity: number
  /** publications kept: offsets last - count + 1 .. last */
  count = 0
  bytes = 0

  constructor (epoch: string, capacity: number) {
    this.epoch = epoch
    this.capacity = capacity
  }

  private slot (offset: number): number {
    return (offset - 1) % this.capacity
  }

  /** the oldest offset kept (last + 1 when none) */
  get first (): number {
    return this.last - this.count + 1
  }

  /** Keep the next publication; returns the bytes it adds (the one it pushes out is subtracted). */
  push (data: string, time: number): number {
    let delta = data.length + ENTRY_OVERHEAD
    if (this.count === this.capacity) delta -= this.dropOldest()
    this.last++
    const i = this.slot(this.last)
    if (i === this.data.length) {
      // a stream starts at offset 1: its ring grows slot by slot until full
      this.data.push(data)
      this.times.push(time)
    } else {
      this.data[i] = data
      this.times[i] = time
    }
    this.count++
    this.bytes += data.length + ENTRY_OVERHEAD
    return delta
  }

  /** Forget the oldest kept publication; returns the bytes freed. */
  dropOldest (): number {
    const i = this.slot(this.first)
    const freed = (this.data[i] as string).length + ENTRY_OVERHEAD
    this.data[i] = undefined
    this.count--
    this.bytes -= freed
    return freed
  }

  /** Forget the publications made before `oldest` (ms); returns the bytes freed. */
  dropOlderThan (oldest: number): number {
    let freed = 0
    while (this.count > 0 && this.times[this.slot(this.first)] < oldest) freed += this.dropOldest()
    return freed
  }

  /** The kept publications after `offset` (offset + 1 >= first). */
  after (offset: number): HistoryEntry[] {
    const entries: HistoryEntry[] = new Array(this.last - offset)
    for (let o = offset + 1, k = 0; o <= this.last; o++, k++) entries[k] = { offset: o, data: this.data[this.slot(o)] as string }
    return entries
  }
}

export class MemoryTopicHistory implements TopicHistory {
  private host: HistoryHost | null = null
  /** streams in the order they were last published to (the least recent first) */
  private readonly streams = new Map<string, Stream>()
  private readonly maxMessages: number
  private readonly maxAge: number
  private readonly maxBytes: number
  private readonly active: (topic: string) => boolean
  private readonly now: () => number
  private readonly prefix = randomBytes(9).toString('base64url')
  private generation = 0
  private sweeper: NodeJS.Timeout | null = null
  /** bytes counted across topics (see the bounds above) */
  bytes = 0

  constructor (options: MemoryHistoryOptions) {
    this.maxMessages = options.maxMessages
    this.maxAge = options.maxAge
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    this.active = options.active ?? (() => false)
    this.now = options.now ?? Date.now
  }

  init (host: HistoryHost): void {
    this.host = host
    if (Number.isFinite(this.maxAge)) {
      // setInterval takes at most 2^31 - 1 ms
      this.sweeper = setInterval(() => { this.sweep() }, Math.min(this.maxAge, 0x7fffffff))
      this.sweeper.unref()
    }
  }

  /** Topics with a stream (publications, or a position to continue from). */
  get topicCount (): number {
    return this.streams.size
  }

  append (topic: string, data: string): void {
    const now = this.now()
    let stream = this.streams.get(topic)
    if (stream === undefined) {
      stream = this.create()
    } else {
      // the map keeps streams in order of their last publication: this one moves to the end
      this.streams.delete(topic)
      this.bytes -= stream.dropOlderThan(now - this.maxAge)
    }
    this.streams.set(topic, stream)
    if (this.maxMessages > 0) this.bytes += stream.push(data, now)
    else stream.last++
    this.bound(stream)
    this.host?.deliver({ topic, epoch: stream.epoch, offset: stream.last, data })
  }

  /** Over maxBytes: forget the least recently published topics, then the oldest publications of `current`. */
  private bound (current: Stream): void {
    if (this.bytes <= this.maxBytes) return
    for (const [topic, stream] of this.streams) {
      if (this.bytes <= this.maxBytes) return
      if (stream === current) break
      this.forget(topic, stream)
    }
    while (this.bytes > this.maxBytes && current.count > 1) this.bytes -= current.dropOldest()
  }

  private forget (topic: string, stream: Stream): void {
    this.streams.delete(topic)
    this.bytes -= stream.bytes + TOPIC_OVERHEAD
  }

  read (topic: string, since: HistoryPosition): HistoryRead {
    const known = this.streams.get(topic)
    const stream = known ?? this.start(topic)
    this.bytes -= stream.dropOlderThan(this.now() - this.maxAge)
    const position = { epoch: stream.epoch, offset: stream.last }
    // a position of another stream (one this store never had, too), or one past this stream's
    // end, is not of this stream
    if (known === undefined || since.epoch !== stream.epoch || since.offset > stream.last) return { ok: false, reason: 'epoch', ...position }
    if (since.offset + 1 < stream.first) return { ok: false, reason: 'too-old', ...position }
    return { ok: true, ...position, entries: stream.after(since.offset) }
  }

  position (topic: string): HistoryPosition {
    const stream = this.streams.get(topic) ?? this.start(topic)
    return { epoch: stream.epoch, offset: stream.last }
  }

  /**
   * A topic never published to, asked for by a subscriber: its stream starts now (empty), so that
   * the subscriber's position stays valid for the publications that follow.
   */
  private start (topic: string): Stream {
    const stream = this.create()
    this.streams.set(topic, stream)
    this.bound(stream)
    return stream
  }

  private create (): Stream {
    this.bytes += TOPIC_OVERHEAD
    return new Stream(`${this.prefix}.${(++this.generation).toString(36)}`, this.maxMessages)
  }

  /** Drop aged publications everywhere; forget the topics left empty that have no local subscriber. */
  sweep (): void {
    const oldest = this.now() - this.maxAge
    for (const [topic, stream] of this.streams) {
      this.bytes -= stream.dropOlderThan(oldest)
      if (stream.count === 0 && !this.active(topic)) this.forget(topic, stream)
    }
  }

  close (): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper)
    this.sweeper = null
    this.streams.clear()
    this.bytes = 0
    return Promise.resolve()
  }
}
