/**
 * The inbound side of a WebSocket, as a base class of WebSocket (./connection.ts): each read goes
 * through the core and its events are dispatched in order; a message goes to the 'message'
 * listeners, to the queue while nobody consumes, or to the async iterator (inflated first with
 * permessage-deflate); reading pauses while a consumer is behind (queue, async listeners, inflate)
 * or our output is over its bound. A base class rather than an object of its own, so a
 * connection stays one object (memory per connection); what closes, sends and reports errors is
 * WebSocket's (the abstract members below).
 */
import { isUtf8 } from 'node:buffer'
import type { EventEmitter } from 'node:events'
import { ProtocolError } from '../protocol/errors.js'
import { DeflateCloseCode, DeflateErrorCode } from '../protocol/permessage-deflate.js'
import type { ProtocolEvent } from '../protocol/protocol.js'
import { ConnectionState, Flag, type QueuedMessage } from './connection-state.js'
import { kInMessage } from './heartbeat.js'
import { CloseCode } from '../protocol/constants.js'
import type { CompressionOutbox } from './outbox.js'
import { holdSlab, type Slab, slabOf } from './message-pool.js'
import type { MessageData } from './types.js'

/** WebSocket.DROP: returned by the `inbound` option to drop a message */
export const kDrop: unique symbol = Symbol('fastify-rfc6455.drop')

// a shared listener (`this` is the emitter), not a closure per connection
function selfOnNewListener (this: InboundConnection, event: string | symbol): void { this['onNewListener'](event) }

export abstract class InboundConnection extends ConnectionState {
  /** Bytes accepted by send() and not yet handed to the operating system (WebSocket's). */
  abstract get bufferedAmount (): number
  /** A listener or hook threw or rejected: report it and close with 1011 (WebSocket's). */
  protected abstract listenerError (err: unknown): void
  /** End our side of TCP once the closing handshake or a failure allows it (WebSocket's). */
  protected abstract endOutput (): void
  /** Emit 'close' once the transport closed and no consumer still waits (WebSocket's). */
  protected abstract maybeEmitClose (): void

  // called by the shared liveness clock (symbol keys: not part of the public API)
  /** true while an inbound data message has started and not finished (its deadline) */
  get [kInMessage] (): boolean {
    return this.core.inMessage
  }

  /** One read. `lent`: the core may keep nothing of `chunk` (the shared read buffer). */
  protected onData (chunk: Buffer, lent: boolean): void {
    this.sawBytes()
    this.dispatching = true
    try {
      // permessage-deflate: answers to earlier messages may still be in zlib; the replies the
      // core owes for control frames of this read wait until their events are taken (drainEvents)
      if (this.outbox !== null) this.core.holdReplies = this.inflating || this.outbox.length > 0
      this.core.receive(chunk, lent)
      // one event at a time: what a listener sends in answer to a message is queued before the
      // replies the core owes for later frames of this read (a pong, the close echo, a failing
      // close), so a message followed by a Close in one read is answered first
      // permessage-deflate: while a message is being inflated, later events wait in the core
      // (their replies too), and reading pauses until the inflated message is handled
      this.drainEvents()
      if ((this.inflating || this.awaitingOutbox) && this.core.pendingEvents > 0 && !this.pausedForInflate) {
        this.pausedForInflate = true
        this.socket.pause()
      }
    } finally {
      this.dispatching = false
    }
    // everything this read produced, and whatever else this tick sends, leaves in one write
    if (this.core.pendingOutput > 0 || this.callbacks !== null) this.scheduleFlush()
    this.checkOutputPressure()
  }

  /**
   * Dispatch the core's events one at a time, in order. permessage-deflate: nothing is taken while
   * a message is being inflated, and a control frame's event (with its reply: the Pong, the Close
   * echo) waits until the messages already in the compression outbox are written, so the answers
   * to the messages received before a Close are sent before the Close echo (RFC 6455 §5.5.1: no
   * data frame after the Close frame). Pings wait the same way: a Pong never overtakes the answer
   * to a message received before its Ping.
   */
  protected drainEvents (): void {
    if (this.outbox === null) {
      // no permessage-deflate: nothing to wait for
      let event
      while ((event = this.core.takeEvent()) !== undefined) this.dispatchOne(event)
      return
    }
    let type
    while (!this.inflating && !this.awaitingOutbox && (type = this.core.nextEventType) !== undefined) {
      if (type !== 'message' && this.outbox !== null && this.outbox.length > 0) {
        this.awaitOutbox(this.outbox)
        return
      }
      this.dispatchOne(this.core.takeEvent() as ProtocolEvent)
    }
  }

  private awaitOutbox (outbox: CompressionOutbox): void {
    this.awaitingOutbox = true
    outbox.afterQueued(() => {
      this.awaitingOutbox = false
      if (this.transportClosed) return
      const was = this.dispatching
      this.dispatching = true
      try {
        this.drainEvents()
      } finally {
        this.dispatching = was
      }
      this.resumeAfterHold()
      this.scheduleFlush()
    })
  }

  protected dispatch (events: ProtocolEvent[]): void {
    for (let i = 0; i < events.length; i++) this.dispatchOne(events[i])
  }

  private dispatchOne (event: ProtocolEvent): void {
    // permessage-deflate: nothing overtakes a message being inflated
    if (this.inflating) {
      this.holdEvent(event)
      return
    }
    switch (event.type) {
      case 'message':
        if (event.compressed && this.outbox !== null) this.inflateMessage(event.data, event.binary)
        else this.onMessage(event.data, event.binary, -1)
        break
      case 'ping':
        this.safeEmit('ping', event.data)
        break
      case 'pong':
        this.safeEmit('pong', event.data)
        break
      case 'close':
        this.closeCode = event.code
        this.closeReason = event.reason
        this.cleanClose = true
        this.endOutput()
        break
      case 'fail':
        this.more().failure = event.error
        this.closeCode = event.error.closeCode
        this.closeReason = ''
        if (this.listenerCount('error') > 0) this.safeEmit('error', event.error)
        this.endOutput()
        break
      case 'end':
        this.endOutput()
        break
      default: {
        const never: never = event
        throw new Error(`unknown event ${(never as { type: string }).type}`)
      }
    }
  }

  /** `wireSize`: the compressed size of an inflated message, -1 for one received uncompressed */
  private onMessage (data: Buffer, binary: boolean, wireSize: number): void {
    this.sawMessage()
    const meter = this.settings.meter
    if (meter !== undefined) meter.received(this, data.length, wireSize < 0 ? data.length : wireSize, binary, wireSize >= 0)
    // lentMessages: a large binary message is a view of a slab the parser holds for its delivery
    // (./message-pool.ts); it is released once the listeners returned, or copied if it waits
    const slab = this.settings.lentMessages && binary ? slabOf(data) : undefined
    if (this.budget !== null && !this.withinBudget(data.length)) {
      if (slab !== undefined) slab.release()
      return
    }
    let value: unknown = data
    if (this.settings.inbound !== undefined) {
      try {
        value = this.settings.inbound.call(this, data, binary)
      } catch (err) {
        this.listenerError(err)
        return
      }
      if (value === kDrop) return
    }
    if (this.queue === null && this.iterators === 0 && messageListenersOf(this) !== undefined) {
      if (slab === undefined) {
        this.emitMessage(value, binary, data.length, undefined)
        return
      }
      try {
        this.emitMessage(value, binary, data.length, slab)
      } finally {
        slab.release()
      }
      return
    }
    if (slab !== undefined) {
      // queued for a later listener or the async iterator: it outlives this call, so it is a copy
      value = data = Buffer.from(data)
      slab.release()
    }
    this.enqueue(data, binary, value)
  }

  /** The route's inbound budget: spend tokens, or meet the policy (close 1008, or drop). */
  private withinBudget (size: number): boolean {
    const budget = this.budget!
    const over = budget.spend(size)
    if (over === undefined) return true
    // the peer's doing, carrying its consequence on the wire (1008 under policy 'close')
    const error = new ProtocolError('WS_ERR_BUDGET_EXCEEDED', CloseCode.PolicyViolation, `inbound ${over} per second over the route's budget`)
    if (budget.options.policy === 'drop') {
      this.settings.meter?.overLimit(this, size, over, 'drop')
      this.safeEmit('budgetExceeded', size, error)
    } else if (this.more().overBudget === null) {
      this.settings.meter?.overLimit(this, size, over, 'close')
      this.rare!.overBudget = over
      this.closeOverBudget()
    }
    return false
  }

  /** Close with 1008 'over budget' if open (WebSocket's). */
  protected abstract closeOverBudget (): void

  private enqueue (data: Buffer, binary: boolean, value: unknown): void {
    const queue = this.queue ??= []
    queue.push({ data, binary, value })
    this.queuedBytes += data.length
    if ((this.flags & Flag.WatchingListeners) === 0) {
      // a 'message' listener added later takes the queue: watched from the first queued message
      this.flags |= Flag.WatchingListeners
      this.on('newListener', selfOnNewListener)
    }
    if (this.iteratorWake !== null) {
      const wake = this.iteratorWake
      this.iteratorWake = null
      wake()
    }
    if (!this.pausedForQueue && (queue.length >= this.settings.maxQueuedMessages || this.queuedBytes >= this.settings.maxQueuedBytes)) {
      this.pausedForQueue = true
      this.socket.pause()
    }
  }

  private dequeue (): QueuedMessage | undefined {
    const queue = this.queue
    if (queue === null) return undefined
    const item = queue.shift() as QueuedMessage
    if (queue.length === 0) this.queue = null
    this.queuedBytes -= item.data.length
    if (this.pausedForQueue && queue.length < this.settings.maxQueuedMessages / 2 && this.queuedBytes < this.settings.maxQueuedBytes / 2) {
      this.pausedForQueue = false
      this.resumeReading()
    }
    return item
  }

  private onNewListener (event: string | symbol): void {
    if (event === 'message' && this.queue !== null) this.scheduleQueueFlush()
  }

  private scheduleQueueFlush (): void {
    if (this.flushQueueScheduled) return
    this.flushQueueScheduled = true
    queueMicrotask(() => {
      this.flushQueueScheduled = false
      this.dispatching = true
      try {
        while (this.iterators === 0 && this.listenerCount('message') > 0) {
          const item = this.dequeue()
          if (item === undefined) break
          this.emitMessage(item.value, item.binary, item.data.length, undefined)
        }
      } finally {
        this.dispatching = false
      }
      this.scheduleFlush()
      this.maybeEmitClose()
    })
  }

  /**
   * Call the 'message' listeners. A listener that returns a promise (an async listener) is
   * tracked: while maxQueuedMessages promises or maxQueuedBytes of their messages are unsettled,
   * reading from the socket pauses, so a slow async consumer bounds memory like the iterator
   * does. A rejected promise is a listener error (1011), never an unhandled rejection.
   * `slab`: the message is lent (lentMessages): an async listener holds it until its promise settles.
   */
  private emitMessage (value: unknown, binary: boolean, bytes: number, slab: Slab | undefined): void {
    // one listener (the common case) is called without the array rawListeners() copies per call
    const one = messageListenersOf(this)
    const listeners = typeof one === 'function' ? undefined : this.rawListeners('message')
    const count = listeners === undefined ? 1 : listeners.length
    for (let i = 0; i < count; i++) {
      const listener = (listeners === undefined ? one : listeners[i]) as (this: InboundConnection, ...args: unknown[]) => unknown
      let result: unknown
      try {
        result = listener.call(this, value, binary)
      } catch (err) {
        this.listenerError(err)
        return
      }
      if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
        this.trackListener(result as Promise<unknown>, bytes, slab)
      }
    }
  }

  /** Some reason to pause reading holds (queue, listeners, inflate, output). */
  private get wantsPause (): boolean {
    return (this.flags & (Flag.PausedForQueue | Flag.PausedForListeners | Flag.PausedForInflate | Flag.PausedForOutput)) !== 0
  }

  /** Resume reading once no reason to pause is left (queue, listeners, inflate, output). */
  private resumeReading (): void {
    if (this.wantsPause) return
    this.socket.resume()
  }

  /**
   * Replies the core writes by itself (Pongs, Close echoes) do not go through send(), so
   * maxBufferedAmount cannot refuse them: a peer that sends Pings and never reads would grow
   * our output without bound. Instead, reading pauses while bufferedAmount is over the limit
   * and resumes on 'drain'.
   */
  private checkOutputPressure (): void {
    if (!this.pausedForOutput && this.bufferedAmount > this.settings.maxBufferedAmount && !this.transportClosed) {
      this.pausedForOutput = true
      this.socket.pause()
    }
  }

  protected relieveOutputPressure (): void {
    if (this.pausedForOutput && this.bufferedAmount <= this.settings.maxBufferedAmount) {
      this.pausedForOutput = false
      this.resumeReading()
    }
  }

  private trackListener (promise: Promise<unknown>, bytes: number, slab: Slab | undefined): void {
    if (slab !== undefined) holdSlab(slab)
    this.pendingListeners++
    this.pendingListenerBytes += bytes
    if (!this.pausedForListeners && (this.pendingListeners >= this.settings.maxQueuedMessages || this.pendingListenerBytes >= this.settings.maxQueuedBytes)) {
      this.pausedForListeners = true
      this.socket.pause()
    }
    const settled = (): void => {
      if (slab !== undefined) slab.release()
      this.pendingListeners--
      this.pendingListenerBytes -= bytes
      if (this.pausedForListeners && this.pendingListeners < this.settings.maxQueuedMessages / 2 && this.pendingListenerBytes < this.settings.maxQueuedBytes / 2) {
        this.pausedForListeners = false
        this.resumeReading()
      }
    }
    promise.then(settled, (err: unknown) => {
      settled()
      this.listenerError(err)
    })
  }

  protected safeEmit (event: string, ...args: unknown[]): void {
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args)
    } catch (err) {
      this.listenerError(err)
    }
  }

  // ---- permessage-deflate ----

  private holdEvent (event: ProtocolEvent): void {
    const held = this.held ??= []
    held.push(event)
    if (event.type === 'message') this.heldBytes += event.data.length
    if (!this.pausedForInflate && (held.length >= this.settings.maxQueuedMessages || this.heldBytes >= this.settings.maxQueuedBytes)) {
      this.pausedForInflate = true
      this.socket.pause()
    }
  }

  /**
   * Inflate one message; events behind it wait, so messages keep their order and a Ping, Pong,
   * Close or end is neither overtaken by nor lost behind it. The inflated size is bounded by
   * maxPayload (1009); text is checked as UTF-8 after inflation (RFC 6455 §8.1, 1007).
   */
  private inflateMessage (data: Buffer, binary: boolean): void {
    this.inflating = true
    ;(this.outbox as CompressionOutbox).deflate.decompress(data, (error, out) => {
      this.inflating = false
      this.dispatching = true
      try {
        if (error !== null) {
          this.inflateFailed(error)
        } else if (!binary && !isUtf8(out)) {
          this.inflateFailed(new ProtocolError(DeflateErrorCode.InvalidUtf8, DeflateCloseCode[DeflateErrorCode.InvalidUtf8], 'text message is not valid UTF-8'))
        } else {
          this.onMessage(out, binary, data.length)
        }
        while (!this.inflating && this.held !== null) {
          const held = this.held
          this.held = null
          this.heldBytes = 0
          this.dispatch(held)
        }
        // then the events that waited in the core, one at a time (see onData)
        this.drainEvents()
      } finally {
        this.dispatching = false
      }
      this.resumeAfterHold()
      this.scheduleFlush()
      if (this.transportClosed) {
        this.releaseDeflate()
        this.maybeEmitClose()
      }
    })
  }

  /** Reading paused while events waited (inflate, outbox): resume once they no longer do. */
  private resumeAfterHold (): void {
    if (this.pausedForInflate && !((this.inflating || this.awaitingOutbox) && this.core.pendingEvents > 0) && (this.held?.length ?? 0) < this.settings.maxQueuedMessages / 2 && this.heldBytes < this.settings.maxQueuedBytes / 2) {
      this.pausedForInflate = false
      this.resumeReading()
    }
  }

  private inflateFailed (error: Error): void {
    this.held = null
    this.heldBytes = 0
    if (this.transportClosed && !(error instanceof ProtocolError)) return // released on close
    const failure = error instanceof ProtocolError
      ? error
      : new ProtocolError(DeflateErrorCode.InvalidCompressedData, DeflateCloseCode[DeflateErrorCode.InvalidCompressedData], 'invalid compressed data')
    // _Fail the WebSocket Connection_ through the core: one Close frame with the code, one 'fail'
    this.core.onFail(failure)
    this.dispatch(this.core.takeEvents())
  }

  /** zlib state goes as soon as the transport is closed and no inflate is in flight. */
  protected releaseDeflate (): void {
    if (this.outbox !== null && !this.inflating) this.outbox.deflate.close()
  }

  /**
   * Iterate messages: text as string, binary as Buffer; on a route with a message schema, the
   * validated values. Ends when the connection closes. While iterating, 'message' listeners are
   * not called (the iterator consumes the queue). Typed `any` here, as the values depend on the
   * route: a handler's socket is typed from its route (RouteSocket, MessageSocket in
   * lib/plugin/types.ts), and both are assignable to and from a WebSocket.
   */
  async * [Symbol.asyncIterator] (): AsyncGenerator<any, void, undefined> {
    this.iterators++
    try {
      while (true) {
        const item = this.dequeue()
        if (item !== undefined) {
          if (this.settings.inbound !== undefined) yield item.value as MessageData
          else yield item.binary ? item.data : item.data.toString('utf8')
          continue
        }
        if (this.transportClosed) return
        await new Promise<void>((resolve) => { this.iteratorWake = resolve })
      }
    } finally {
      this.iterators--
      if (this.transportClosed) this.maybeEmitClose()
    }
  }
}

/**
 * The 'message' entry of an EventEmitter's listener table: undefined with no listener, the function
 * itself with one (a `once` wrapper for a once listener), an array with several. Read per message
 * instead of listenerCount()/rawListeners(), which cost a call and an array per message.
 */
function messageListenersOf (emitter: EventEmitter): unknown {
  return (emitter as unknown as { _events: Record<string, unknown> })._events.message
}
