/**
 * Liveness for every connection of the process from ONE shared timer (not an interval per
 * socket): heartbeat pings, the pong deadline, idle timeout, max lifetime and the deadline of
 * an incomplete inbound message.
 *
 * Hot paths only set flags (`sawBytes`, `sawMessage`); the clock turns them into timestamps on
 * its next tick, so no `Date.now()` is taken per read. The clock ticks at a resolution derived
 * from the shortest configured deadline (a quarter of it, between 5 ms and 1 s), so a deadline
 * of T ms fires between T and T + 2 x resolution. The timer is unref'd and stopped at its first
 * tick with no connection watched, so an idle process holds no timer.
 *
 * A tick that comes late (the event loop was blocked: a long synchronous task, a GC pause, a
 * starved process) runs before the bytes that arrived meanwhile are read, so it judges no peer:
 * the heartbeat, idle and incomplete-message deadlines wait for the next tick, after a poll for
 * I/O. The deadlines that do not depend on the peer (max lifetime, credentials) fire on it.
 */

import { EventEmitter } from 'node:events'
import type { WebSocketEvents } from './types.js'
import { type BudgetOptions, hasBudget, InboundBudget } from './budget.js'

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

export type ExpiryReason = 'heartbeat' | 'idle' | 'lifetime' | 'incomplete-message' | 'credentials'

/** 'late': the clock's tick came after a blocked event loop, before pending reads ran */
type Tick = 'on-time' | 'late'

/** The clock's calls into a connection, keyed by symbols so they stay off its public surface. */
export const kHeartbeatPing: unique symbol = Symbol('fastify-rfc6455.heartbeatPing')
export const kExpire: unique symbol = Symbol('fastify-rfc6455.expire')
export const kInMessage: unique symbol = Symbol('fastify-rfc6455.inMessage')
const kTick: unique symbol = Symbol('fastify-rfc6455.tick')
/** ms since the connection was opened */
export const kAge: unique symbol = Symbol('fastify-rfc6455.age')

/**
 * Milliseconds since this module was loaded (at least 1): small integers, which V8 stores in the
 * object itself, where a Date.now() value needs a heap number per field (memory per connection).
 */
const EPOCH = Date.now() - 1
function now (): number { return Date.now() - EPOCH }

/** clock resolution of a connection watched only for its inbound budget or credentials */
const BUDGET_RESOLUTION = 100
const CREDENTIALS_RESOLUTION = 1000

const SAW_BYTES = 1
const SAW_MESSAGE = 2
const WATCHING = 4

/**
 * The liveness record of a connection, as the base class of its WebSocket: the fields live in
 * the connection object itself rather than in one more object per connection (memory).
 */
export abstract class LivenessEmitter extends EventEmitter<WebSocketEvents> {
  /** SAW_BYTES, SAW_MESSAGE (since the last tick) and WATCHING */
  private livenessBits = 0
  private readonly opened: number
  private lastBytes: number
  private lastMessage: number
  private pingSentAt = 0
  private messageStartedAt = 0
  /** the credentials deadline on this clock (0: none), set by expireAt() */
  private credentialsExpireAt = 0
  /** inbound token buckets, on routes with a budget only (refilled by the clock) */
  protected budget: InboundBudget | null = null

  constructor () {
    super()
    this.opened = this.lastBytes = this.lastMessage = now()
  }

  get [kAge] (): number {
    return now() - this.opened
  }

  /** send a heartbeat Ping */
  abstract [kHeartbeatPing] (): void
  /** the deadlines, shared by every connection of a route (read from its settings: no field here) */
  protected abstract get livenessOptions (): LivenessOptions
  /** a deadline passed */
  abstract [kExpire] (reason: ExpiryReason): void
  /** true while an inbound data message has started and not finished */
  abstract get [kInMessage] (): boolean

  /** any bytes arrived from the peer (hot path: one bit, turned into a time by the clock) */
  protected sawBytes (): void { this.livenessBits |= SAW_BYTES }
  /** a data message was received or sent */
  protected sawMessage (): void { this.livenessBits |= SAW_MESSAGE }

  protected startLiveness (options: LivenessOptions, budget: BudgetOptions | null): void {
    if (budget !== null && hasBudget(budget)) {
      this.budget = new InboundBudget(budget, now())
      this.watch(Math.min(BUDGET_RESOLUTION, isActive(options) ? resolutionFor(options) : Infinity))
    } else if (isActive(options)) {
      this.watch(resolutionFor(options))
    }
  }

  private watch (resolution: number): void {
    if ((this.livenessBits & WATCHING) !== 0) return
    this.livenessBits |= WATCHING
    clock.watch(this, resolution)
  }

  /**
   * The credentials deadline (ms since the epoch; 0 removes it), checked on the clock's tick: at
   * or after it the connection is closed with reason 'credentials'. No timer per connection.
   */
  protected setCredentialsDeadline (epochMs: number): void {
    this.credentialsExpireAt = epochMs === 0 ? 0 : Math.max(1, epochMs - EPOCH)
    if (epochMs !== 0) this.watch(CREDENTIALS_RESOLUTION)
  }

  /** the credentials deadline in ms since the epoch, or null */
  protected get credentialsDeadline (): number | null {
    return this.credentialsExpireAt === 0 ? null : this.credentialsExpireAt + EPOCH
  }

  protected stopLiveness (): void {
    if ((this.livenessBits & WATCHING) === 0) return
    this.livenessBits &= ~WATCHING
    clock.unwatch(this)
  }

  /** Called by the clock. */
  [kTick] (now: number, tick: Tick): void {
    const o = this.livenessOptions
    const bits = this.livenessBits
    if ((bits & SAW_BYTES) !== 0) { this.lastBytes = now; this.pingSentAt = 0 }
    if ((bits & SAW_MESSAGE) !== 0) this.lastMessage = now
    this.livenessBits = bits & WATCHING
    if (this.budget !== null) this.budget.refill(now)
    if (this.credentialsExpireAt !== 0 && now >= this.credentialsExpireAt) return this.fire('credentials')
    if (o.maxLifetime > 0 && now - this.opened >= o.maxLifetime) return this.fire('lifetime')
    // what the peer sent while the loop was blocked is still unread: judge it on the next tick
    if (tick === 'late') return
    if (o.idleTimeout > 0 && now - this.lastMessage >= o.idleTimeout) return this.fire('idle')
    if (o.incompleteMessageTimeout > 0) {
      if (!this[kInMessage]) this.messageStartedAt = 0
      else if (this.messageStartedAt === 0) this.messageStartedAt = now
      else if (now - this.messageStartedAt >= o.incompleteMessageTimeout) return this.fire('incomplete-message')
    }
    if (o.heartbeatInterval > 0) {
      if (this.pingSentAt !== 0) {
        // any bytes from the peer (its Pong, or data ahead of it) answer the Ping
        if (now - this.pingSentAt >= o.heartbeatInterval) return this.fire('heartbeat')
      } else if (now - this.lastBytes >= o.heartbeatInterval) {
        this.pingSentAt = now
        this[kHeartbeatPing]()
      }
    }
  }

  private fire (reason: ExpiryReason): void {
    this.stopLiveness()
    this[kExpire](reason)
  }
}

function isActive (o: LivenessOptions): boolean {
  return o.heartbeatInterval > 0 || o.idleTimeout > 0 || o.maxLifetime > 0 || o.incompleteMessageTimeout > 0
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
  private readonly watched = new Set<LivenessEmitter>()
  private timer: NodeJS.Timeout | null = null
  private resolution = Infinity
  /** when the last tick ran (or the timer started), on this module's clock */
  private lastTick = 0
  /** the last tick was late and judged no peer */
  private deferred = false
  /** how many intervals were ever created (for tests: one per busy period, not per socket) */
  timersCreated = 0

  get size (): number {
    return this.watched.size
  }

  get running (): boolean {
    return this.timer !== null
  }

  watch (item: LivenessEmitter, resolution: number): void {
    this.watched.add(item)
    if (this.timer === null || resolution < this.resolution) {
      this.resolution = Math.min(resolution, this.resolution)
      this.restart()
    }
  }

  unwatch (item: LivenessEmitter): void {
    // the timer stops at its next tick with nothing to watch, not here: connections opened and
    // closed one after another would otherwise create and clear a timer each
    this.watched.delete(item)
  }

  private stop (): void {
    clearInterval(this.timer!)
    this.timer = null
    this.resolution = Infinity
  }

  private restart (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timersCreated++
    this.timer = setInterval(this.onTick, this.resolution)
    this.lastTick = now()
    this.deferred = false
    this.timer.unref()
  }

  private readonly onTick = (): void => {
    if (this.watched.size === 0) return this.stop()
    const time = now()
    // more than a period behind: the loop was blocked and the bytes that came meanwhile wait in
    // the kernel. The next tick follows a poll for I/O and judges, late or not (a loop that is
    // always behind still finds dead peers).
    const tick: Tick = !this.deferred && time - this.lastTick > 2 * this.resolution ? 'late' : 'on-time'
    this.deferred = tick === 'late'
    this.lastTick = time
    // a Set iterates entries added during iteration too; deleting while iterating is safe
    for (const item of this.watched) {
      try {
        item[kTick](time, tick)
      } catch {
        // a failing target must not stop the clock for every other connection
      }
    }
  }
}

/** The shared clock (exported for tests and diagnostics). */
export const clock = new LivenessClock()
