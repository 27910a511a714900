/**
 * Liveness for every connection of the process from ONE shared timer (not an interval per
 * socket): heartbeat pings, the pong deadline, idle timeout, max lifetime and the deadline of
 * an incomplete inbound message.
 *
 * Hot paths only set flags (`sawBytes`, `sawMessage`); the clock turns them into timestamps on
 * its next tick, so no `Date.now()` is taken per read. The clock ticks at a resolution derived
 * from the shortest configured deadline (a quarter of it, between 5 ms and 1 s), so a deadline
 * of T ms fires between T and T + 2 x resolution. The timer is unref'd and stopped as soon as
 * no connection is watched, so an idle process holds no timer.
 */

export interface LivenessOptions {
  /** ms of peer silence before a Ping is sent; the peer then has as long again to answer. 0 = off */
  heartbeatInterval: number
  /** ms without a data message in either direction before closing. 0 = off */
  idleTimeout: number
  /** ms a connection may live at all before closing. 0 = off */
  maxLifetime: number
  /** ms a started inbound message may take to complete. 0 = off */
  incompleteMessageTimeout: number
}

export type ExpiryReason = 'heartbeat' | 'idle' | 'lifetime' | 'incomplete-message'

/** The clock's calls into a connection, keyed by symbols so they stay off its public surface. */
export const kHeartbeatPing: unique symbol = Symbol('fastify-rfc6455.heartbeatPing')
export const kExpire: unique symbol = Symbol('fastify-rfc6455.expire')
export const kInMessage: unique symbol = Symbol('fastify-rfc6455.inMessage')

/** What the clock needs from a connection. */
export interface LivenessTarget {
  /** send a heartbeat Ping */
  [kHeartbeatPing] (): void
  /** a deadline passed */
  [kExpire] (reason: ExpiryReason): void
  /** true while an inbound data message has started and not finished */
  readonly [kInMessage]: boolean
}

/**
 * Milliseconds since this module was loaded (at least 1): small integers, which V8 stores in the
 * object itself, where a Date.now() value needs a heap number per field (memory per connection).
 */
const EPOCH = Date.now() - 1
function now (): number { return Date.now() - EPOCH }

/** Per-connection liveness state, watched by the shared clock. */
export class Liveness {
  /** any bytes arrived from the peer since the last tick */
  sawBytes = false
  /** a data message was received or sent since the last tick */
  sawMessage = false
  private readonly target: LivenessTarget
  /** shared by every connection of a route */
  private readonly options: LivenessOptions
  private readonly opened: number
  private lastBytes: number
  private lastMessage: number
  private pingSentAt = 0
  private messageStartedAt = 0
  private watching = false

  constructor (target: LivenessTarget, options: LivenessOptions) {
    this.target = target
    this.options = options
    this.opened = this.lastBytes = this.lastMessage = now()
  }

  get active (): boolean {
    const o = this.options
    return o.heartbeatInterval > 0 || o.idleTimeout > 0 || o.maxLifetime > 0 || o.incompleteMessageTimeout > 0
  }

  start (): void {
    if (this.watching || !this.active) return
    this.watching = true
    clock.watch(this, resolutionFor(this.options))
  }

  stop (): void {
    if (!this.watching) return
    this.watching = false
    clock.unwatch(this)
  }

  /** Called by the clock. */
  tick (now: number): void {
    const o = this.options
    if (this.sawBytes) { this.sawBytes = false; this.lastBytes = now; this.pingSentAt = 0 }
    if (this.sawMessage) { this.sawMessage = false; this.lastMessage = now }
    if (o.maxLifetime > 0 && now - this.opened >= o.maxLifetime) return this.fire('lifetime')
    if (o.idleTimeout > 0 && now - this.lastMessage >= o.idleTimeout) return this.fire('idle')
    if (o.incompleteMessageTimeout > 0) {
      if (!this.target[kInMessage]) this.messageStartedAt = 0
      else if (this.messageStartedAt === 0) this.messageStartedAt = now
      else if (now - this.messageStartedAt >= o.incompleteMessageTimeout) return this.fire('incomplete-message')
    }
    if (o.heartbeatInterval > 0) {
      if (this.pingSentAt !== 0) {
        // any bytes from the peer (its Pong, or data ahead of it) answer the Ping
        if (now - this.pingSentAt >= o.heartbeatInterval) return this.fire('heartbeat')
      } else if (now - this.lastBytes >= o.heartbeatInterval) {
        this.pingSentAt = now
        this.target[kHeartbeatPing]()
      }
    }
  }

  private fire (reason: ExpiryReason): void {
    this.stop()
    this.target[kExpire](reason)
  }
}

function resolutionFor (o: LivenessOptions): number {
  let shortest = Infinity
  if (o.heartbeatInterval > 0) shortest = o.heartbeatInterval
  if (o.idleTimeout > 0 && o.idleTimeout < shortest) shortest = o.idleTimeout
  if (o.maxLifetime > 0 && o.maxLifetime < shortest) shortest = o.maxLifetime
  if (o.incompleteMessageTimeout > 0 && o.incompleteMessageTimeout < shortest) shortest = o.incompleteMessageTimeout
  return Math.min(1000, Math.max(5, Math.floor(shortest / 4)))
}

/** The one timer of the process. */
class LivenessClock {
  private readonly watched = new Set<Liveness>()
  private timer: NodeJS.Timeout | null = null
  private resolution = Infinity
  /** how many intervals were ever created (for tests: one per busy period, not per socket) */
  timersCreated = 0

  get size (): number {
    return this.watched.size
  }

  get running (): boolean {
    return this.timer !== null
  }

  watch (item: Liveness, resolution: number): void {
    this.watched.add(item)
    if (this.timer === null || resolution < this.resolution) {
      this.resolution = Math.min(resolution, this.resolution)
      this.restart()
    }
  }

  unwatch (item: Liveness): void {
    this.watched.delete(item)
    if (this.watched.size === 0 && this.timer !== null) {
      clearInterval(this.timer)
      this.timer = null
      this.resolution = Infinity
    }
  }

  private restart (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timersCreated++
    this.timer = setInterval(this.onTick, this.resolution)
    this.timer.unref()
  }

  private readonly onTick = (): void => {
    const time = now()
    // a Set iterates entries added during iteration too; deleting while iterating is safe
    for (const item of this.watched) {
      try {
        item.tick(time)
      } catch {
        // a failing target must not stop the clock for every other connection
      }
    }
  }
}

/** The shared clock (exported for tests and diagnostics). */
export const clock = new LivenessClock()
