/**
 * The history of topics in Redis (./history.ts's TopicHistory), over the Redis adapter's own
 * two connections: one stream per topic kept by atomic Lua scripts (./redis-history-script.ts),
 * publications carried to every instance on the topic's pub/sub channel.
 *
 * Delivery: `append()` only runs the script; the script publishes the publication with its
 * epoch and offset, and every instance, the publisher included, delivers it to its local
 * subscribers when pub/sub brings it. Per topic this store keeps the last offset it delivered:
 * an offset at or below it is a duplicate and dropped; an offset beyond the next one (the
 * subscriber connection lost messages, or an instance's SUBSCRIBE became effective late) is
 * held while the missing ones are read from the stream (XRANGE), so the hub sees every offset
 * once and in order. Publications trimmed before they could be read are reported as lost.
 *
 * Baseline: when the hub asks a subscribed topic's position (or reads it) first, the delivered
 * position starts at the stream's position read after the topic's channel was subscribed, so
 * every offset after it arrives on pub/sub or from a fill; when a publication arrives first,
 * delivery starts with it (nobody here was told an earlier position).
 * `position()` of a subscribed topic answers that delivered position (no Redis round trip):
 * a subscriber told it then receives everything after it.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { HistoryHost, HistoryOptions, HistoryPosition, HistoryRead, TopicHistory } from './history.js'
import { historyHeader } from './redis-envelope.js'
import { APPEND_SCRIPT, READ_SCRIPT } from './redis-history-script.js'
import { RedisAdapterErrorCode, adapterError } from './redis-options.js'

/** A topic's position outlives its stream: a subscriber that missed nothing resumes after a quiet day. */
export const DEFAULT_POSITION_TTL = 24 * 60 * 60 * 1000
/** Publications held per topic while a gap is being filled; past it, the gap is given up (reported). */
const MAX_HELD = 10_000

/** What the store needs of the adapter that owns the connections. */
export interface HistoryLink {
  readonly prefix: string
  readonly sharded: boolean
  readonly instanceId: Buffer
  /** bytes of appends that may await Redis's answer (the adapter's maxPendingBytes) */
  readonly maxPendingBytes: number
  /** the connection scripts run on, or null while it is not ready */
  commands (): Redis | null
  channelOf (topic: string): string
}

export interface RedisHistoryOptions extends HistoryOptions {
  /** ms a topic's position (epoch and last offset) is kept after its last publication; default 24 h (at least maxAge; Infinity: kept) */
  readonly positionTtl?: number
}

interface Script { readonly text: string, readonly sha: string }
function script (text: string): Script {
  return { text, sha: createHash('sha1').update(text).digest('hex') }
}
const APPEND = script(APPEND_SCRIPT)
const READ = script(READ_SCRIPT)

type Reply = Array<string | number>

/** A random epoch: 12 characters of base64url (72 bits). */
function newEpoch (): string {
  return randomBytes(9).toString('base64url')
}

/** The delivery state of one subscribed topic on this instance. */
class Track {
  /** null until the baseline is read */
  epoch: string | null = null
  /** the last offset handed to the hub */
  last = 0
  /** publications received past a gap, by offset */
  readonly held = new Map<number, string>()
  /** publications received before the baseline, in arrival order */
  early: Array<{ epoch: string, offset: number, data: string }> = []
  filling = false
  waiters: Array<{ resolve: () => void, reject: (error: Error) => void }> = []
  constructor (readonly subscribed: Promise<unknown>) {}
}

export class RedisTopicHistory implements TopicHistory {
  private host: HistoryHost | null = null
  /** topics whose channel the adapter holds -> its SUBSCRIBE command */
  private readonly subscribed = new Map<string, Promise<unknown>>()
  private readonly tracks = new Map<string, Track>()
  private readonly header: Buffer
  private readonly maxMessages: string
  private readonly maxAge: string
  private readonly positionTtl: string
  private closed = false
  /** bytes of appends sent and not yet answered */
  private pendingBytes = 0
  /** appends refused since maxPendingBytes was reached (0: not overloaded) */
  private overloaded = 0
  /** appends refused since Redis became unavailable */
  private lostInOutage = 0

  constructor (private readonly link: HistoryLink, options: RedisHistoryOptions) {
    this.header = historyHeader(link.instanceId)
    this.maxMessages = String(options.maxMessages)
    // Infinity (no age limit) crosses as 0: no age trimming, no expiry
    const finite = (ms: number): string => (ms === Infinity ? '0' : String(ms))
    this.maxAge = finite(options.maxAge)
    this.positionTtl = finite(Math.max(options.positionTtl ?? DEFAULT_POSITION_TTL, options.maxAge))
  }

  init (host: HistoryHost): void {
    this.host = host
  }

  append (topic: string, data: string): void {
    if (this.closed) return
    if (this.link.commands() === null) {
      this.notKept()
      return
    }
    // Redis connected but not answering: at most maxPendingBytes of appends wait for it
    const size = data.length + topic.length
    if (this.pendingBytes + size > this.link.maxPendingBytes) {
      this.overloaded++
      if (this.overloaded === 1) this.report(adapterError(RedisAdapterErrorCode.Overloaded, `Redis has not answered ${this.pendingBytes} bytes of publications on topics with history: new ones are not kept nor delivered until it catches up`, { unforwarded: 0, recovered: false }))
      return
    }
    this.pendingBytes += size
    const args = [newEpoch(), data, this.maxMessages, this.maxAge, this.positionTtl, this.link.channelOf(topic), this.header, this.link.sharded ? '1' : '0']
    this.run(APPEND, topic, args).then(() => { this.answered(size) }, (error: Error) => {
      this.answered(size)
      if (this.link.commands() === null) this.notKept()
      else this.report(adapterError(RedisAdapterErrorCode.Unavailable, `a publication on "${topic}" was not kept nor delivered: ${error.message}`, { unforwarded: 1, recovered: false }))
    })
  }

  /** A publication not kept while Redis is unavailable: reported once per outage, counted. */
  private notKept (): void {
    this.lostInOutage++
    if (this.lostInOutage === 1) this.report(adapterError(RedisAdapterErrorCode.Unavailable, 'Redis is unavailable: publications on topics with history are not kept nor delivered until it is back', { unforwarded: 0, recovered: false }))
  }

  /** Appends of `size` bytes answered; an overload ends at half the bound. */
  private answered (size: number): void {
    this.pendingBytes -= size
    if (this.overloaded === 0 || this.pendingBytes > this.link.maxPendingBytes / 2) return
    const lost = this.overloaded
    this.overloaded = 0
    this.report(adapterError(RedisAdapterErrorCode.Overloaded, `Redis caught up; ${lost} publication(s) on topics with history were not kept nor delivered meanwhile`, { unforwarded: lost, recovered: true }))
  }

  async read (topic: string, since: HistoryPosition): Promise<HistoryRead> {
    await this.baseline(topic)
    const offset = since.offset
    const valid = typeof since.epoch === 'string' && Number.isSafeInteger(offset) && offset >= 0
    // an epoch no stream has (the empty one) makes the script answer 'epoch'
    const reply = await this.run(READ, topic, [newEpoch(), this.positionTtl, valid ? since.epoch : ' ', valid ? offset : 0, this.maxAge]) as Reply
    const [epoch, last, status, first] = [String(reply[0]), Number(reply[1]), reply[2], Number(reply[3])]
    if (status !== 'ok') return { ok: false, reason: status === 'epoch' ? 'epoch' : 'too-old', epoch, offset: last }
    const entries = reply.slice(4).map((data, i) => ({ offset: first + i, data: String(data) }))
    return { ok: true, epoch, entries, offset: last }
  }

  async position (topic: string): Promise<HistoryPosition> {
    const track = await this.baseline(topic)
    if (track?.epoch != null) return { epoch: track.epoch, offset: track.last }
    const reply = await this.run(READ, topic, [newEpoch(), this.positionTtl, '']) as Reply
    return { epoch: String(reply[0]), offset: Number(reply[1]) }
  }

  async close (): Promise<void> {
    this.closed = true
    this.down()
    this.tracks.clear()
    this.subscribed.clear()
  }

  /** The adapter subscribes `topic`'s channel (`command`: the SUBSCRIBE, answered or not). */
  subscribe (topic: string, command: Promise<unknown> | undefined): void {
    this.subscribed.set(topic, Promise.resolve(command))
  }

  /** The adapter no longer holds `topic`'s channel: its delivery state goes. */
  unsubscribe (topic: string): void {
    this.subscribed.delete(topic)
    this.tracks.get(topic)?.waiters.forEach((w) => w.reject(adapterError(RedisAdapterErrorCode.Unavailable, `"${topic}" was unsubscribed`)))
    this.tracks.delete(topic)
  }

  /** A history publication from pub/sub on a channel the adapter holds. */
  received (topic: string, epoch: string, offset: number, data: string): void {
    if (this.closed || !this.subscribed.has(topic)) return
    let track = this.tracks.get(topic)
    if (track === undefined) {
      // nobody here was told a position of this topic yet: delivery starts with this one
      this.tracks.set(topic, track = new Track(Promise.resolve()))
      track.epoch = epoch
      track.last = offset - 1
    }
    if (track.epoch === null) {
      if (track.early.length < MAX_HELD) track.early.push({ epoch, offset, data })
      return
    }
    this.accept(topic, track, epoch, offset, data)
  }

  /**
   * The subscriber connection is back and every channel subscribed again: publications made
   * meanwhile are read from the streams; topics without a baseline get one.
   */
  resync (): void {
    if (this.lostInOutage > 0) {
      const lost = this.lostInOutage
      this.lostInOutage = 0
      this.report(adapterError(RedisAdapterErrorCode.Unavailable, `Redis is back; ${lost} publication(s) on topics with history were not kept nor delivered while it was unavailable`, { unforwarded: lost, recovered: true }))
    }
    for (const [topic, track] of this.tracks) {
      if (track.epoch === null) void this.start(topic, track)
      else void this.fill(topic, track)
    }
  }

  /** Redis is unavailable: whoever waits for a baseline is told so. */
  down (): void {
    for (const track of this.tracks.values()) {
      if (track.epoch !== null) continue
      const error = adapterError(RedisAdapterErrorCode.Unavailable, 'Redis is unavailable: the topic\'s history cannot be read')
      for (const waiter of track.waiters.splice(0)) waiter.reject(error)
    }
  }

  private track (topic: string): Track {
    let track = this.tracks.get(topic)
    if (track === undefined) {
      this.tracks.set(topic, track = new Track(this.subscribed.get(topic) ?? Promise.resolve()))
      void this.start(topic, track)
    }
    return track
  }

  /** The delivery state of a subscribed topic once its baseline is known; null for a topic not subscribed. */
  private async baseline (topic: string): Promise<Track | null> {
    if (!this.subscribed.has(topic)) return null
    const track = this.track(topic)
    if (track.epoch === null) await new Promise<void>((resolve, reject) => track.waiters.push({ resolve, reject }))
    return track
  }

  /** Read the stream's position once the channel is subscribed: delivery starts after it. */
  private async start (topic: string, track: Track): Promise<void> {
    await track.subscribed
    let reply: Reply
    try {
      reply = await this.run(READ, topic, [newEpoch(), this.positionTtl, '']) as Reply
    } catch (error) {
      // Redis is unavailable: resync() starts again once it is back
      if (this.tracks.get(topic) === track) for (const waiter of track.waiters.splice(0)) waiter.reject(error as Error)
      return
    }
    if (this.tracks.get(topic) !== track || track.epoch !== null) return
    track.epoch = String(reply[0])
    track.last = Number(reply[1])
    for (const waiter of track.waiters.splice(0)) waiter.resolve()
    const early = track.early
    track.early = []
    for (const p of early) this.accept(topic, track, p.epoch, p.offset, p.data)
  }

  private accept (topic: string, track: Track, epoch: string, offset: number, data: string): void {
    if (epoch !== track.epoch) {
      // a new stream (Redis lost the position): its offsets start over at 1
      this.lost(topic, track.held.size)
      track.held.clear()
      track.epoch = epoch
      track.last = 0
    }
    if (offset <= track.last) return
    track.held.set(offset, data)
    this.drain(topic, track)
  }

  /** Deliver the held publications that follow the last one; on a gap, fill it from the stream. */
  private drain (topic: string, track: Track): void {
    for (let data = track.held.get(track.last + 1); data !== undefined; data = track.held.get(track.last + 1)) {
      track.held.delete(++track.last)
      this.deliver(topic, track, data)
    }
    if (track.held.size === 0) return
    // the fill failed for too long: give the gap up rather than hold without bound
    if (track.held.size > MAX_HELD) this.skipTo(topic, track, Math.max(...track.held.keys()) + 1)
    else void this.fill(topic, track)
  }

  /** Read what follows the last delivered offset from the stream and deliver it in order. */
  private async fill (topic: string, track: Track): Promise<void> {
    if (track.filling || track.epoch === null) return
    track.filling = true
    const asked = track.epoch
    let reply: Reply
    try {
      reply = await this.run(READ, topic, [newEpoch(), this.positionTtl, asked, track.last, this.maxAge]) as Reply
    } catch (error) {
      track.filling = false
      // Redis is unavailable (the adapter reports the outage): resync() fills once it is back
      if (this.tracks.get(topic) === track && this.link.commands() !== null) this.report(adapterError(RedisAdapterErrorCode.Unavailable, `the missing publications of "${topic}" could not be read: ${(error as Error).message}`))
      return
    }
    track.filling = false
    if (this.tracks.get(topic) !== track) return
    // a new stream arrived on pub/sub meanwhile: this answer is of the old one
    if (track.epoch !== asked) {
      this.drain(topic, track)
      return
    }
    const [epoch, last, status, first] = [String(reply[0]), Number(reply[1]), reply[2], Number(reply[3])]
    if (status === 'epoch') {
      // the stream was lost meanwhile: the new one from its start
      this.skipTo(topic, track, Infinity)
      if (epoch === track.epoch) return
      track.epoch = epoch
      track.last = 0
      if (last > 0) void this.fill(topic, track)
      return
    }
    // publications trimmed before they could be read: lost
    if (first > track.last + 1) this.skipTo(topic, track, first)
    reply.slice(4).forEach((data, i) => { if (first + i > track.last) track.held.set(first + i, String(data)) })
    this.drain(topic, track)
  }

  /** Deliver the held publications below `offset` in order, gaps given up and reported; last becomes offset - 1. */
  private skipTo (topic: string, track: Track, offset: number): void {
    const below = [...track.held.keys()].filter((o) => o < offset).sort((a, b) => a - b)
    const end = offset === Infinity ? (below.at(-1) ?? track.last) : offset - 1
    this.lost(topic, end - track.last - below.length)
    for (const o of below) {
      const data = track.held.get(o) as string
      track.held.delete(o)
      track.last = o
      this.deliver(topic, track, data)
    }
    track.last = end
  }

  private deliver (topic: string, track: Track, data: string): void {
    try {
      this.host?.deliver({ topic, epoch: track.epoch as string, offset: track.last, data })
    } catch (error) {
      this.report(error as Error)
    }
  }

  private lost (topic: string, count: number): void {
    if (count > 0) this.report(adapterError(RedisAdapterErrorCode.Unavailable, `${count} publication(s) of "${topic}" were trimmed from its history before this instance could deliver them`, { unforwarded: count, recovered: false }))
  }

  private report (error: Error & { code?: string }): void {
    if (!this.closed) this.host?.onError(error)
  }

  /** Run a script on the topic's keys: EVALSHA, and EVAL when Redis does not have it (NOSCRIPT). */
  private async run (which: Script, topic: string, args: Array<string | number | Buffer>): Promise<unknown> {
    const redis = this.link.commands()
    if (redis === null) throw adapterError(RedisAdapterErrorCode.Unavailable, 'Redis is unavailable')
    const keys = [`${this.link.prefix}#p#${topic}`, `${this.link.prefix}#h#${topic}`]
    try {
      return await redis.evalsha(which.sha, 2, ...keys, ...args)
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error
      return await redis.eval(which.text, 2, ...keys, ...args)
    }
  }
}
