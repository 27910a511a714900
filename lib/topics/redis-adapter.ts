/**
 * A TopicAdapter that forwards publications between instances through Redis pub/sub.
 *
 * - Channels: `${prefix}#t#${topic}` per topic and `${prefix}#r#${instance id}` for the presence
 *   replies addressed to one instance. The kind segment (`t`, `r`) keeps a topic from ever
 *   naming a reply channel; the topic comes last and verbatim, so `PUBSUB CHANNELS
 *   fastify-rfc6455#t#*` lists exactly the topics some instance listens to.
 * - Interest-based routing: the subscriber connection holds a topic's channel only while the
 *   hub has a local subscriber (`subscribe`/`unsubscribe` from the hub), so an instance
 *   receives no traffic for topics nobody on it wants.
 * - `sharded: true` uses Redis 7 sharded pub/sub (SSUBSCRIBE / SPUBLISH / SUNSUBSCRIBE).
 * - Exactly once while Redis is up: every envelope carries this instance's id and the instance
 *   drops its own publications when Redis hands them back. Order per publisher and topic: one
 *   publisher connection sends its PUBLISH commands in call order and Redis delivers a channel's
 *   messages in the order it received them.
 * - Outage: publications are forwarded only while the publisher connection is ready; otherwise
 *   they are counted and reported (the hub has delivered them locally already). Nothing is
 *   queued: ioredis's offline queue is off and unanswered commands are never resent, so across
 *   an outage delivery is at most once. Both connections reconnect by themselves and every topic
 *   still wanted is subscribed again when the subscriber connection is back.
 */
import { randomBytes } from 'node:crypto'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { TopicAdapter, TopicAdapterHost, TopicPublication } from './adapter.js'
import type { HistoryOptions } from './history.js'
import { decodeEnvelope, encodePresenceReply, encodePresenceRequest, encodePublication, EnvelopeKind, HEADER_LENGTH, INSTANCE_ID_LENGTH, type PublicationKind } from './redis-envelope.js'
import { RedisTopicHistory } from './redis-history.js'
import { PresenceRequests } from './redis-presence.js'
import { RedisAdapterErrorCode, adapterError, checkRedisAdapterOptions, type CheckedRedisAdapterOptions, type RedisAdapterOptions } from './redis-options.js'

/** Settings this adapter imposes on the connections it opens, whatever the user passed. */
const CONNECTION_OVERRIDES: Partial<RedisOptions> = {
  lazyConnect: true,
  // no unbounded buffering: a command issued while disconnected fails at once
  enableOfflineQueue: false,
  // commands in flight when the connection drops fail instead of being resent after the
  // reconnect (a resent PUBLISH may have been delivered already: at most once, never twice)
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  // the adapter resubscribes from its own set of wanted channels
  autoResubscribe: false,
  // a burst of publishes made in one tick leaves in one write
  enableAutoPipelining: true
}

/** The same for a Redis Cluster: the per-node settings go in `redisOptions`. */
function clusterOverrides (template: Cluster, subscriber: boolean): ClusterOptions {
  const { lazyConnect, enableOfflineQueue, enableAutoPipelining, ...perNode } = CONNECTION_OVERRIDES
  return {
    lazyConnect,
    enableOfflineQueue,
    enableAutoPipelining,
    redisOptions: { ...template.options.redisOptions, ...perNode },
    // SSUBSCRIBE on a cluster: one subscriber connection per primary, each channel on the
    // primary that owns its hash slot
    ...(subscriber ? { shardedSubscribers: true } : {})
  }
}

function publicationKind (publication: TopicPublication): PublicationKind {
  if (publication.binary) return EnvelopeKind.Binary
  return publication.json === true ? EnvelopeKind.Json : EnvelopeKind.Text
}

/** One connection to Redis: a server (or a Sentinel-managed one) or a cluster. */
type Connection = Redis | Cluster

export interface RedisAdapterStats {
  /** publications that could not be forwarded to other instances (Redis unavailable) */
  unforwarded: number
  /** times the connection to Redis was lost */
  outages: number
  /** messages on this adapter's channels that were not envelopes of this version, ignored */
  malformed: number
}

export class RedisTopicAdapter implements TopicAdapter {
  readonly instanceId = randomBytes(INSTANCE_ID_LENGTH)
  readonly stats: RedisAdapterStats = { unforwarded: 0, outages: 0, malformed: 0 }
  private readonly options: CheckedRedisAdapterOptions
  private readonly topicPrefix: string
  private readonly replyChannel: string
  /** wanted channel -> topic: what the subscriber connection must hold */
  private readonly channels = new Map<string, string>()
  private readonly presence = new PresenceRequests()
  private host: TopicAdapterHost | null = null
  private pub: Connection | null = null
  private sub: Connection | null = null
  private down = false
  private unforwardedInOutage = 0
  /** bytes of publications sent and not yet answered by Redis */
  private pendingBytes = 0
  /** maxPendingBytes was reached; publications not forwarded since */
  private overloaded = false
  private unforwardedInOverload = 0
  private closed = false
  /** the history of topics in Redis, once the hub asked for it */
  private historyStore: RedisTopicHistory | null = null

  constructor (options: RedisAdapterOptions = {}) {
    this.options = checkRedisAdapterOptions(options)
    this.topicPrefix = `${this.options.prefix}#t#`
    this.replyChannel = `${this.options.prefix}#r#${this.instanceId.toString('hex')}`
  }

  /** The Redis channel that carries `topic`. */
  channelOf (topic: string): string {
    return this.topicPrefix + topic
  }

  /**
   * The channel's name as it comes back from Redis: channel names cross as UTF-8, so a topic
   * that is not well-formed UTF-16 (a lone surrogate) returns with U+FFFD in its place.
   */
  private keyOf (topic: string): string {
    return Buffer.from(this.channelOf(topic)).toString()
  }

  /**
   * The history of topics kept in Redis (one stream per topic), over this adapter's
   * connections; the hub asks for it when the plugin's `history` option is on. Redis Cluster
   * is refused: a topic's keys and its channel are not placed in one hash slot.
   */
  history (options: HistoryOptions): RedisTopicHistory {
    if (this.historyStore !== null) throw adapterError(RedisAdapterErrorCode.InUse, 'this Redis adapter already keeps a topic history')
    if (this.options.client instanceof Cluster) {
      throw adapterError(RedisAdapterErrorCode.Option, 'topic history in Redis needs one Redis server (or a Sentinel-managed one), not a Redis Cluster')
    }
    this.historyStore = new RedisTopicHistory({
      prefix: this.options.prefix,
      sharded: this.options.sharded,
      instanceId: this.instanceId,
      maxPendingBytes: this.options.maxPendingBytes,
      commands: () => (this.pub?.status === 'ready' ? this.pub as Redis : null),
      channelOf: (topic) => this.channelOf(topic)
    }, options)
    return this.historyStore
  }

  async init (host: TopicAdapterHost): Promise<void> {
    if (this.host !== null) throw adapterError(RedisAdapterErrorCode.InUse, 'this Redis adapter already serves a topic hub; create one adapter per Fastify instance')
    this.host = host
    const pub = this.pub = this.connection({ subscriber: false })
    const sub = this.sub = this.connection({ subscriber: true })
    for (const connection of [pub, sub]) {
      // 'error' always precedes a 'close' the outage handling acts on; listening here keeps
      // ioredis from printing it as unhandled
      connection.on('error', () => {})
      connection.on('close', () => this.lost())
      connection.on('ready', () => { void this.ready() })
    }
    sub.on(this.options.sharded ? 'smessageBuffer' : 'messageBuffer', (channel: Buffer, message: Buffer) => this.receive(channel, message))
    // the first connection attempt: if Redis is not there yet, the instance starts anyway,
    // serves its local subscribers and connects when Redis comes (reported as an outage)
    const connected = await Promise.allSettled([pub.connect(), sub.connect()])
    if (connected.some((result) => result.status === 'rejected')) this.lost()
    // resolve once the reply channel (and any topic already wanted) is subscribed
    else await this.ready()
  }

  subscribe (topic: string): Promise<void> | undefined {
    const channel = this.keyOf(topic)
    if (this.channels.get(channel) === topic) return
    this.channels.set(channel, topic)
    const listening = this.listen([channel])
    this.historyStore?.subscribe(topic, listening)
    return listening
  }

  unsubscribe (topic: string): Promise<void> | undefined {
    const channel = this.keyOf(topic)
    if (this.channels.get(channel) !== topic) return
    this.channels.delete(channel)
    this.historyStore?.unsubscribe(topic)
    const sub = this.sub
    if (sub === null || sub.status !== 'ready') return
    const command = this.options.sharded ? sub.sunsubscribe(channel) : sub.unsubscribe(channel)
    return command.then(() => {}, (error: Error) => this.refused(error))
  }

  publish (publication: TopicPublication): void {
    if (this.closed) return
    const pub = this.pub
    if (pub === null || pub.status !== 'ready') {
      this.notForwarded()
      return
    }
    const size = HEADER_LENGTH + publication.payload.length
    if (this.pendingBytes + size > this.options.maxPendingBytes) {
      this.overload()
      return
    }
    const channel = this.channelOf(publication.topic)
    const envelope = encodePublication(this.instanceId, publication.payload, publicationKind(publication))
    this.pendingBytes += size
    const sent = this.options.sharded ? pub.spublish(channel, envelope) : pub.publish(channel, envelope)
    sent.then(() => this.answered(size), () => { this.answered(size); this.notForwarded() })
  }

  async subscriberCount (topic: string): Promise<number> {
    const host = this.host
    const pub = this.pub
    if (host === null || pub === null) return 0
    const local = host.localCount(topic)
    if (pub.status !== 'ready' || this.sub?.status !== 'ready') {
      throw adapterError(RedisAdapterErrorCode.Unavailable, 'Redis is unavailable: the subscriber count across instances cannot be asked')
    }
    const timeout = this.options.presenceTimeout
    const { id, answered } = this.presence.open(timeout, () => adapterError(RedisAdapterErrorCode.PresenceTimeout, `not every instance answered the presence request for "${topic}" within ${timeout} ms`))
    const channel = this.channelOf(topic)
    const request = encodePresenceRequest(this.instanceId, id)
    const sent = this.options.sharded ? pub.spublish(channel, request) : pub.publish(channel, request)
    sent.then(
      (receivers) => this.presence.expect(id, Number(receivers)),
      (error: Error) => this.presence.fail(id, adapterError(RedisAdapterErrorCode.Unavailable, `the presence request failed: ${error.message}`))
    )
    return local + await answered
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.presence.failAll(adapterError(RedisAdapterErrorCode.Unavailable, 'the Redis adapter closed'))
    const connections = [this.pub, this.sub].filter((c): c is Connection => c !== null)
    await Promise.all(connections.map(async (connection) => {
      connection.removeAllListeners('close')
      connection.removeAllListeners('ready')
      // QUIT is answered after every command before it: publications in flight still leave
      if (connection.status === 'ready') await connection.quit().catch(() => {})
      connection.disconnect()
    }))
  }

  private connection ({ subscriber }: { subscriber: boolean }): Connection {
    const { url, client } = this.options
    if (client instanceof Cluster) return client.duplicate(undefined, clusterOverrides(client, subscriber))
    if (client instanceof Redis) return client.duplicate(CONNECTION_OVERRIDES)
    if (url !== undefined) return new Redis(url, { ...client, ...CONNECTION_OVERRIDES })
    return new Redis({ ...client, ...CONNECTION_OVERRIDES })
  }

  /** Subscribe the subscriber connection to `channels` (when it is not ready, `ready()` will). */
  private listen (channels: string[]): Promise<void> | undefined {
    const sub = this.sub
    if (sub === null || sub.status !== 'ready' || channels.length === 0) return
    // sharded channels are subscribed one per command: in a cluster one SSUBSCRIBE may only
    // name channels of one hash slot
    const commands = this.options.sharded ? channels.map((c) => sub.ssubscribe(c)) : [sub.subscribe(...channels)]
    return Promise.all(commands).then(() => {}, (error: Error) => this.refused(error))
  }

  private receive (channelBytes: Buffer, message: Buffer): void {
    const host = this.host
    if (host === null || this.closed) return
    const envelope = decodeEnvelope(message)
    if (envelope === null) {
      this.stats.malformed++
      host.onError(adapterError(RedisAdapterErrorCode.Message, `a message on ${channelBytes.toString()} is not an envelope of this adapter; ignored`))
      return
    }
    const own = envelope.instance.equals(this.instanceId)
    const channel = channelBytes.toString()
    switch (envelope.kind) {
      case EnvelopeKind.Text:
      case EnvelopeKind.Binary:
      case EnvelopeKind.Json: {
        if (own) return
        const topic = this.channels.get(channel)
        // a publication that arrives after the last local subscriber left has nobody to reach
        if (topic === undefined) return
        // the JSON text of an object: each receiving hub serializes it again through its
        // subscribers' schemas
        host.deliver(envelope.kind === EnvelopeKind.Json
          ? { topic, payload: envelope.payload, binary: false, json: true }
          : { topic, payload: envelope.payload, binary: envelope.kind === EnvelopeKind.Binary })
        return
      }
      case EnvelopeKind.PresenceRequest: {
        if (own) {
          this.presence.answer(envelope.requestId, 0)
          return
        }
        const topic = this.channels.get(channel)
        const count = topic === undefined ? 0 : host.localCount(topic)
        const pub = this.pub
        if (pub === null || pub.status !== 'ready') return
        const replyTo = `${this.options.prefix}#r#${envelope.instance.toString('hex')}`
        const reply = encodePresenceReply(this.instanceId, envelope.requestId, count)
        const sent = this.options.sharded ? pub.spublish(replyTo, reply) : pub.publish(replyTo, reply)
        sent.then(undefined, () => {})
        return
      }
      case EnvelopeKind.PresenceReply:
        if (channel === this.replyChannel) this.presence.answer(envelope.requestId, envelope.count)
        return
      case EnvelopeKind.History: {
        // delivered by every instance, the publisher too: the offsets give the one order
        const topic = this.channels.get(channel)
        if (topic !== undefined) this.historyStore?.received(topic, envelope.epoch, envelope.offset, envelope.data.toString())
      }
    }
  }

  /** A connection became ready: resubscribe what is wanted; when both are ready the outage is over. */
  private async ready (): Promise<void> {
    if (this.closed || this.sub?.status !== 'ready' || this.pub?.status !== 'ready') return
    await this.listen([this.replyChannel, ...this.channels.keys()])
    // the outage ends once every wanted channel is subscribed again
    if (!this.down || this.closed || this.sub?.status !== 'ready' || this.pub?.status !== 'ready') return
    this.down = false
    // what was published on history topics meanwhile is read from their streams
    this.historyStore?.resync()
    const lost = this.unforwardedInOutage
    this.unforwardedInOutage = 0
    this.host?.onError(adapterError(RedisAdapterErrorCode.Unavailable, `Redis is back; ${lost} publication(s) were delivered to this instance's subscribers only while it was unavailable`, { unforwarded: lost, recovered: true }))
  }

  /** A connection was lost (or never made): report the outage once. */
  private lost (): void {
    if (this.closed || this.down) return
    this.down = true
    this.stats.outages++
    this.historyStore?.down()
    this.host?.onError(adapterError(RedisAdapterErrorCode.Unavailable, 'Redis is unavailable: publications reach this instance\'s subscribers only until it is back', { unforwarded: 0, recovered: false }))
  }

  private notForwarded (): void {
    this.stats.unforwarded++
    if (this.pub?.status === 'ready') {
      // Redis answered the PUBLISH with an error (an ACL, a full output buffer): not an outage
      this.host?.onError(adapterError(RedisAdapterErrorCode.Unavailable, 'Redis refused to forward a publication', { unforwarded: 1, recovered: false }))
      return
    }
    this.unforwardedInOutage++
    this.lost()
  }

  /**
   * Redis is connected but has not answered `maxPendingBytes` of publications: memory stays
   * bounded, so this publication is delivered locally only. Reported once per episode.
   */
  private overload (): void {
    this.stats.unforwarded++
    this.unforwardedInOverload++
    if (this.overloaded) return
    this.overloaded = true
    this.host?.onError(adapterError(RedisAdapterErrorCode.Overloaded, `Redis has not answered ${this.pendingBytes} bytes of publications: new ones reach this instance's subscribers only until it catches up`, { unforwarded: 0, recovered: false }))
  }

  /** Redis answered (or failed) a publication of `size` bytes; an overload ends at half the bound. */
  private answered (size: number): void {
    this.pendingBytes -= size
    if (!this.overloaded || this.pendingBytes > this.options.maxPendingBytes / 2) return
    this.overloaded = false
    const lost = this.unforwardedInOverload
    this.unforwardedInOverload = 0
    this.host?.onError(adapterError(RedisAdapterErrorCode.Overloaded, `Redis caught up; ${lost} publication(s) were delivered to this instance's subscribers only meanwhile`, { unforwarded: lost, recovered: true }))
  }

  private refused (error: Error): void {
    // a command failed by a connection that just dropped is part of the outage, reported as such
    if (this.closed || this.down || this.sub?.status !== 'ready') return
    this.host?.onError(adapterError(RedisAdapterErrorCode.Unavailable, `Redis refused a subscription command: ${error.message}`))
  }
}

/** A TopicAdapter that shares topics between instances through Redis pub/sub. */
export function redisAdapter (options: RedisAdapterOptions = {}): RedisTopicAdapter {
  return new RedisTopicAdapter(options)
}
