/**
 * The WebSocket users hold: the Node adapter between a Duplex (net.Socket) and the Sans-I/O core.
 *
 * - One TCP read -> protocol.receive -> events dispatched -> all output produced meanwhile
 *   (echoes, pongs, the close echo) leaves in one write.
 * - Messages that arrive before anybody listens are queued, and reading pauses while the queue
 *   is over its bound, so nothing accepted is lost and memory stays bounded.
 * - 'close' is emitted exactly once, after the transport has closed.
 */
import type { Duplex } from 'node:stream'
import { CloseCode } from '../protocol/constants.js'
import { ProtocolError, WebSocketUsageError } from '../protocol/errors.js'
import { type ProtocolEvent, ReadyState, toBuffer } from '../protocol/protocol.js'
import { ConnectionState, Flag, type QueuedMessage } from './connection-state.js'
import { type ExpiryReason, kExpire, kHeartbeatPing, kInMessage } from './heartbeat.js'
// permessage-deflate (issue 4)
import { isUtf8 } from 'node:buffer'
import { checkCloseArguments, controlPayload } from '../protocol/protocol.js'
import type { PreparedMessage } from './broadcast.js'
import { payloadKind } from './payload.js'
import { lendReads } from './shared-reads.js'
import { DeflateCloseCode, DeflateErrorCode } from '../protocol/permessage-deflate.js'
import type { CompressionOutbox } from './outbox.js'
import type { MessageData, SendCallback, WebSocketOptions } from './types.js'

export { ReadyState }

export type { MessageData, SendCallback, WebSocketEvents, WebSocketOptions } from './types.js'

const kWebSocket = Symbol('fastify-rfc6455.websocket')
type OwnedSocket = Duplex & { [kWebSocket]: WebSocket }

// Shared listeners (`this` is the emitter); bracket access reaches the private handlers.
function socketOnData (this: Duplex, chunk: Buffer): void { (this as OwnedSocket)[kWebSocket]['onData'](chunk, false) }
/**
 * Reads into the shared buffer (./shared-reads.ts): the bytes are only lent to the core. Returning
 * false stops reading: a read that arrives while the WebSocket wants reading paused (Node's
 * socket.pause() does stop reads in this mode; this holds even if something restarted them).
 */
function socketOnRead (this: Duplex, nread: number, buffer: Buffer): boolean {
  const ws = (this as OwnedSocket)[kWebSocket]
  ws['onData'](buffer.subarray(0, nread), true)
  return !ws['wantsPause']
}
function socketOnEnd (this: Duplex): void { (this as OwnedSocket)[kWebSocket]['onEnd']() }
function socketOnClose (this: Duplex): void { (this as OwnedSocket)[kWebSocket]['onTransportClose']() }
function socketOnError (this: Duplex, err: Error): void { (this as OwnedSocket)[kWebSocket]['onSocketError'](err) }
function socketOnDrain (this: Duplex): void { (this as OwnedSocket)[kWebSocket]['onDrain']() }
function selfOnNewListener (this: WebSocket, event: string | symbol): void { this['onNewListener'](event) }

export class WebSocket extends ConnectionState {
  static readonly CONNECTING = ReadyState.Connecting
  static readonly OPEN = ReadyState.Open
  static readonly CLOSING = ReadyState.Closing
  static readonly CLOSED = ReadyState.Closed
  /** returned by the `inbound` option to drop a message */
  static readonly DROP: unique symbol = Symbol('fastify-rfc6455.drop')

  constructor (socket: Duplex, options: WebSocketOptions = {}) {
    super(socket, options)
    const settings = this.settings
    // Memory: listeners are shared module-level functions that find this WebSocket through the
    // socket, not six closures per connection.
    ;(socket as OwnedSocket)[kWebSocket] = this
    const lent = settings.sharedReadBuffer && lendReads(socket, socketOnRead)
    if (!lent) socket.on('data', socketOnData)
    socket.on('end', socketOnEnd)
    socket.on('close', socketOnClose)
    socket.on('error', socketOnError)
    // 'drain' is listened to from the first write the socket could not take at once (watchDrain)
    const s = socket as Duplex & { setNoDelay?: (v: boolean) => void }
    if (typeof s.setNoDelay === 'function') s.setNoDelay(true)
    this.startLiveness(settings.liveness)
    // reading into the shared buffer has no 'data' listener to start the flow (a socket its owner
    // paused on purpose stays paused, as it would with a 'data' listener)
    if (lent && socket.readableFlowing !== false) socket.resume()
  }

  /** Feed bytes that arrived with the upgrade request (the `head` of the 'upgrade' event). */
  receive (head: Buffer): void {
    if (head.length > 0) this.onData(head, false)
  }

  get readyState (): ReadyState {
    if (this.emittedClose || this.transportClosed) return ReadyState.Closed
    if (this.outbox !== null && this.outbox.closeDeferred) return ReadyState.Closing
    return this.core.readyState === ReadyState.Closed ? ReadyState.Closing : this.core.readyState
  }

  /** Bytes accepted by send() and not yet handed to the operating system. */
  get bufferedAmount (): number {
    return this.core.pendingOutput + (this.socket.writableLength ?? 0) + (this.outbox === null ? 0 : this.outbox.bytes)
  }

  // ---- inbound ----

  /** One read. `lent`: the core may keep nothing of `chunk` (the shared read buffer). */
  private onData (chunk: Buffer, lent: boolean): void {
    this.sawBytes()
    this.dispatching = true
    try {
      this.core.receive(chunk, lent)
      // one event at a time: what a listener sends in answer to a message is queued before the
      // replies the core owes for later frames of this read (a pong, the close echo, a failing
      // close), so a message followed by a Close in one read is answered first
      // permessage-deflate: while a message is being inflated, later events wait in the core
      // (their replies too), and reading pauses until the inflated message is handled
      let event
      while (!this.inflating && (event = this.core.takeEvent()) !== undefined) this.dispatchOne(event)
      if (this.inflating && this.core.pendingEvents > 0 && !this.pausedForInflate) {
        this.pausedForInflate = true
        this.socket.pause()
      }
    } finally {
      this.dispatching = false
    }
    this.flush()
    this.checkOutputPressure()
  }

  private dispatch (events: ProtocolEvent[]): void {
    for (let i = 0; i < events.length; i++) this.dispatchOne(events[i])
  }

  private dispatchOne (event: ProtocolEvent): void {
    // permessage-deflate: nothing overtakes a message being inflated (issue 4)
    if (this.inflating) {
      this.holdEvent(event)
      return
    }
    switch (event.type) {
      case 'message':
        if (event.compressed && this.outbox !== null) this.inflateMessage(event.data, event.binary)
        else this.onMessage(event.data, event.binary)
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

  private onMessage (data: Buffer, binary: boolean): void {
    this.sawMessage()
    let value: unknown = data
    if (this.settings.inbound !== undefined) {
      try {
        value = this.settings.inbound.call(this, data, binary)
      } catch (err) {
        this.listenerError(err)
        return
      }
      if (value === WebSocket.DROP) return
    }
    if (this.queue === null && this.iterators === 0 && this.listenerCount('message') > 0) {
      this.emitMessage(value, binary, data.length)
      return
    }
    this.enqueue(data, binary, value)
  }

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
          this.emitMessage(item.value, item.binary, item.data.length)
        }
      } finally {
        this.dispatching = false
      }
      this.flush()
      this.maybeEmitClose()
    })
  }

  /**
   * Call the 'message' listeners. A listener that returns a promise (an async listener) is
   * tracked: while maxQueuedMessages promises or maxQueuedBytes of their messages are unsettled,
   * reading from the socket pauses, so a slow async consumer bounds memory like the iterator
   * does. A rejected promise is a listener error (1011), never an unhandled rejection.
   */
  private emitMessage (value: unknown, binary: boolean, bytes: number): void {
    const listeners = this.rawListeners('message')
    for (let i = 0; i < listeners.length; i++) {
      let result: unknown
      try {
        result = (listeners[i] as (this: WebSocket, ...args: unknown[]) => unknown).call(this, value, binary)
      } catch (err) {
        this.listenerError(err)
        return
      }
      if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
        this.trackListener(result as Promise<unknown>, bytes)
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
   * and resumes on 'drain' (issue 5).
   */
  private checkOutputPressure (): void {
    if (!this.pausedForOutput && this.bufferedAmount > this.settings.maxBufferedAmount && !this.transportClosed) {
      this.pausedForOutput = true
      this.socket.pause()
    }
  }

  private relieveOutputPressure (): void {
    if (this.pausedForOutput && this.bufferedAmount <= this.settings.maxBufferedAmount) {
      this.pausedForOutput = false
      this.resumeReading()
    }
  }

  private trackListener (promise: Promise<unknown>, bytes: number): void {
    this.pendingListeners++
    this.pendingListenerBytes += bytes
    if (!this.pausedForListeners && (this.pendingListeners >= this.settings.maxQueuedMessages || this.pendingListenerBytes >= this.settings.maxQueuedBytes)) {
      this.pausedForListeners = true
      this.socket.pause()
    }
    const settled = (): void => {
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

  private safeEmit (event: string, ...args: unknown[]): void {
    try {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args)
    } catch (err) {
      this.listenerError(err)
    }
  }

  private listenerError (err: unknown): void {
    const onListenerError = this.settings.onListenerError
    if (onListenerError !== undefined) {
      try { onListenerError.call(this, err) } catch { /* the error handler itself failed: still close */ }
    }
    // an unexpected exception closes with 1011 and no internal detail
    if (this.readyState === ReadyState.Open) this.close(CloseCode.InternalError)
  }

  // ---- outbound ----

  /**
   * Send a message: a string as text; a Buffer, ArrayBuffer, typed array or DataView as binary;
   * a plain object or array as JSON text. Anything else is a TypeError. Returns false when the
   * message was not sent (not open) or the socket is backed up (wait for 'drain').
   */
  send (data: unknown, cb?: SendCallback): boolean {
    const kind = payloadKind(data, 'send')
    if (this.core.closing || this.readyState !== ReadyState.Open) {
      if (cb !== undefined) queueMicrotask(() => cb(new WebSocketUsageError('FST_ERR_WS_NOT_OPEN', 'the WebSocket is not open')))
      return false
    }
    const payload: string | Buffer = kind === 'text' ? data as string : kind === 'binary' ? toBuffer(data as ArrayBuffer) : this.settings.serialize(data)
    if (!this.admit(payload, cb)) return false
    if (this.outbox !== null && this.outbox.offer(payload, cb)) {
      this.sawMessage()
      return this.sendResult()
    }
    if (typeof payload === 'string') this.core.sendText(payload)
    else this.core.sendBinary(payload)
    this.sawMessage()
    if (cb !== undefined) (this.callbacks ??= []).push(cb)
    if (!this.dispatching) this.flush()
    return this.sendResult()
  }

  /**
   * Write a message framed once for many sockets (see broadcast()). The same bytes go to every
   * socket, in order with what this socket already queued. Returns true when the message was
   * queued on this socket (false: not open, or refused by maxBufferedAmount).
   */
  sendPrepared (message: PreparedMessage, cb?: SendCallback): boolean {
    if (this.core.closing || this.readyState !== ReadyState.Open) {
      if (cb !== undefined) queueMicrotask(() => cb(new WebSocketUsageError('FST_ERR_WS_NOT_OPEN', 'the WebSocket is not open')))
      return false
    }
    // a compressing socket, or one with messages still being compressed, sends its own copy
    if (this.outbox !== null && this.outbox.takes(message.payload.length)) {
      this.send(message.payload, cb)
      return this.readyState === ReadyState.Open && !this.core.closing
    }
    if (!this.admit(message.frame, cb)) return false
    if (this.core.pendingOutput > 0) this.flush()
    this.socket.write(message.frame, cb)
    this.watchDrain()
    this.sawMessage()
    this.sendResult()
    return true
  }

  /** send()'s answer: false while backed up, and then a 'drain' is owed (issue 5). */
  private sendResult (): boolean {
    if (!this.backedUp) return true
    this.owedDrain = true
    return false
  }

  /**
   * Emit the owed 'drain' once bufferedAmount is under the high-water mark, whether it was the
   * socket that drained or the compression outbox (which the socket's 'drain' does not see).
   */
  private checkDrain (): void {
    if (!this.owedDrain || this.drainCheckScheduled) return
    this.drainCheckScheduled = true
    queueMicrotask(() => {
      this.drainCheckScheduled = false
      if (!this.owedDrain || (this.backedUp && !this.transportClosed)) return
      this.owedDrain = false
      this.releaseDrainWaiters()
      if (!this.transportClosed) this.safeEmit('drain')
    })
  }

  /**
   * maxBufferedAmount: a message that would take bufferedAmount past the limit meets the policy
   * ('close': close 1008 so a slow reader cannot grow server memory; 'drop': the message is not
   * queued, the callback gets FST_ERR_WS_BUFFER_FULL and 'dropped' is emitted). A message sent
   * while nothing is buffered always goes, so one message larger than the limit is not refused.
   */
  private admit (payload: string | Buffer, cb: SendCallback | undefined): boolean {
    const buffered = this.bufferedAmount
    if (buffered === 0) return true
    let size = payload.length
    if (typeof payload === 'string' && buffered + size * 3 > this.settings.maxBufferedAmount) size = Buffer.byteLength(payload)
    if (buffered + size <= this.settings.maxBufferedAmount) return true
    const error = new WebSocketUsageError('FST_ERR_WS_BUFFER_FULL', `bufferedAmount would exceed maxBufferedAmount (${this.settings.maxBufferedAmount} bytes)`)
    if (this.settings.bufferedAmountPolicy === 'drop') {
      this.more().droppedMessages++
      this.safeEmit('dropped', size, error)
    } else {
      // RFC 6455 §7.4.1: 1008 "a message that violates its policy": the peer does not read
      this.close(CloseCode.PolicyViolation, 'send buffer full')
    }
    if (cb !== undefined) queueMicrotask(() => cb(error))
    return false
  }

  /** True while bufferedAmount is at or over the socket's high-water mark: 'drain' will follow. */
  private get backedUp (): boolean {
    return (this.socket.writableNeedDrain ?? false) || this.bufferedAmount >= (this.socket.writableHighWaterMark ?? 16384)
  }

  /**
   * Resolves once the socket is no longer backed up ('drain'), or at once when it is not, or
   * when the connection closed (check readyState after awaiting). Use with send()'s result:
   * `if (!socket.send(chunk)) await socket.drained()`.
   */
  drained (): Promise<void> {
    if (this.transportClosed || !this.backedUp) return Promise.resolve()
    this.owedDrain = true
    return new Promise((resolve) => { (this.drainWaiters ??= []).push(resolve) })
  }

  private releaseDrainWaiters (): void {
    const waiters = this.drainWaiters
    if (waiters === null) return
    this.drainWaiters = null
    for (const resolve of waiters) resolve()
  }

  // ---- liveness (the shared clock in ./heartbeat.ts calls these) ----

  // called by the shared liveness clock (symbol keys: not part of the public API)
  /** true while an inbound data message has started and not finished (its deadline) */
  get [kInMessage] (): boolean {
    return this.core.inMessage
  }

  [kHeartbeatPing] (): void {
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.ping()
    if (!this.dispatching) this.flush()
  }

  [kExpire] (reason: ExpiryReason): void {
    this.more().expiredBy = reason
    if (reason === 'heartbeat' || this.readyState !== ReadyState.Open || this.core.closing) {
      // the peer did not answer a Ping for a whole interval: it is gone, no handshake
      this.terminate()
    } else if (reason === 'incomplete-message') {
      // a slow peer holding a partial message: fail it with 1008 and close TCP at once
      this.more().failure = new ProtocolError('WS_ERR_MESSAGE_TIMEOUT', CloseCode.PolicyViolation, 'an incomplete message passed incompleteMessageTimeout')
      this.closeCode = CloseCode.PolicyViolation
      this.close(CloseCode.PolicyViolation, 'message timeout')
      this.endOutput()
    } else {
      // RFC 6455 §7.4.1: 1001 "going away"
      this.close(CloseCode.GoingAway, reason === 'idle' ? 'idle timeout' : 'max lifetime')
    }
  }

  /** Send a Ping (payload at most 125 bytes). */
  ping (data?: string | Buffer | ArrayBuffer | ArrayBufferView): void {
    const payload = controlPayload(data) // bad arguments throw whatever the state
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.ping(payload)
    if (!this.dispatching) this.flush()
  }

  /** Send an unsolicited Pong (payload at most 125 bytes). */
  pong (data?: string | Buffer | ArrayBuffer | ArrayBufferView): void {
    const payload = controlPayload(data) // bad arguments throw whatever the state
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.pong(payload)
    if (!this.dispatching) this.flush()
  }

  /**
   * Start the closing handshake (RFC 6455 §7.1.2). The arguments are checked (a valid code,
   * a reason of at most 123 bytes) and a bad one throws. If the peer does not answer within
   * `closeTimeout` ms the socket is destroyed.
   */
  close (code?: number, reason?: string | Buffer): void {
    if (this.outbox !== null && this.outbox.length > 0 && !this.core.closing && !this.transportClosed) {
      // permessage-deflate: messages sent before close() are still being compressed
      checkCloseArguments(code, reason)
      this.outbox.deferClose(code, reason)
      if (this.closeTimer === null) this.startCloseTimer()
      return
    }
    this.core.close(code, reason)
    if (this.transportClosed) return
    if (this.closeTimer === null) this.startCloseTimer()
    if (!this.dispatching) this.flush()
  }

  /** Destroy the connection now, without a closing handshake. */
  terminate (): void {
    this.socket.destroy()
  }

  protected flush (): void {
    const chunks = this.core.takeOutput()
    const callbacks = this.callbacks
    this.callbacks = null
    const done = callbacks === null ? undefined : (err?: Error | null) => { for (const cb of callbacks) cb(err) }
    if (chunks.length === 0) {
      if (done !== undefined) queueMicrotask(done)
    } else if (this.socket.destroyed || this.socket.writableEnded) {
      if (done !== undefined) queueMicrotask(() => done(new WebSocketUsageError('FST_ERR_WS_NOT_OPEN', 'the WebSocket is closed')))
    } else if (chunks.length === 1) {
      this.socket.write(chunks[0], done)
    } else {
      this.socket.cork()
      const last = chunks.length - 1
      for (let i = 0; i < last; i++) this.socket.write(chunks[i])
      this.socket.write(chunks[last], done)
      this.socket.uncork()
    }
    this.watchDrain()
    if (this.owedDrain) this.checkDrain()
    if (this.pausedForOutput) this.relieveOutputPressure()
  }

  /**
   * Listen to the socket's 'drain' once a write left it over its high-water mark: 'drain' only
   * follows such a write, and is emitted later, so listening now misses none (memory and
   * handshake time: one listener fewer on sockets that never back up).
   */
  private watchDrain (): void {
    if ((this.flags & Flag.WatchingDrain) !== 0 || this.socket.writableNeedDrain !== true) return
    this.flags |= Flag.WatchingDrain
    this.socket.on('drain', socketOnDrain)
  }

  /** After the closing handshake (or a failure) the server closes TCP first (§7.1.1). */
  private endOutput (): void {
    if (this.endedOutput) return
    this.endedOutput = true
    if (this.dispatching) {
      queueMicrotask(() => this.endSocket())
    } else {
      this.flush()
      this.endSocket()
    }
  }

  private endSocket (): void {
    this.flush()
    const socket = this.socket
    if (!socket.destroyed && !socket.writableEnded) socket.end()
    // closeTimeout: the peer must end its side too. Not needed when it already has and nothing
    // of ours waits to be written: both FINs are then under way and the socket closes by itself
    // (a handshake-rate cost otherwise: a timer set and cleared per connection)
    if (this.closeTimer === null && !socket.destroyed && !(socket.readableEnded && socket.writableLength === 0)) this.startCloseTimer()
  }

  private startCloseTimer (): void {
    this.closeTimer = setTimeout(() => {
      this.closeTimer = null
      this.socket.destroy()
    }, this.settings.closeTimeout)
    this.closeTimer.unref()
  }

  private onDrain (): void {
    this.relieveOutputPressure()
    if (this.owedDrain) this.checkDrain()
    else this.safeEmit('drain')
  }

  private onEnd (): void {
    this.core.receiveEnd()
    this.dispatch(this.core.takeEvents())
  }

  private onSocketError (err: Error): void {
    // peer misbehaviour (reset, broken pipe) is not an application error: 'close' tells it
    this.emit('transportError', err)
  }

  private onTransportClose (): void {
    this.transportClosed = true
    this.stopLiveness()
    this.releaseDrainWaiters()
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer)
      this.closeTimer = null
    }
    this.core.receiveEnd()
    this.core.takeEvents()
    this.core.takeOutput()
    this.socket.removeListener('data', socketOnData)
    this.releaseDeflate()
    if (this.iteratorWake !== null) {
      const wake = this.iteratorWake
      this.iteratorWake = null
      wake()
    }
    this.maybeEmitClose()
  }

  /** 'close' waits for the transport and for queued messages a listener is about to take. */
  private maybeEmitClose (): void {
    if (this.emittedClose || !this.transportClosed) return
    if (this.inflating) return // an inflated message still comes (permessage-deflate)
    if (this.queue !== null && (this.iterators > 0 || this.listenerCount('message') > 0)) return
    this.emittedClose = true
    this.queue = null
    this.queuedBytes = 0
    const wasClean = this.cleanClose && this.failure === null
    const onClose = this.settings.onClose
    if (onClose !== undefined) {
      try { onClose.call(this, this.closeCode, this.closeReason, wasClean) } catch (err) { this.listenerError(err) }
    }
    this.safeEmit('close', this.closeCode, Buffer.from(this.closeReason), wasClean)
  }

  // ---- permessage-deflate (issue 4) ----

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
          this.onMessage(out, binary)
        }
        while (!this.inflating && this.held !== null) {
          const held = this.held
          this.held = null
          this.heldBytes = 0
          this.dispatch(held)
        }
        // then the events that waited in the core, one at a time (see onData)
        let event
        while (!this.inflating && (event = this.core.takeEvent()) !== undefined) this.dispatchOne(event)
      } finally {
        this.dispatching = false
      }
      if (this.pausedForInflate && !(this.inflating && this.core.pendingEvents > 0) && (this.held?.length ?? 0) < this.settings.maxQueuedMessages / 2 && this.heldBytes < this.settings.maxQueuedBytes / 2) {
        this.pausedForInflate = false
        this.resumeReading()
      }
      this.flush()
      if (this.transportClosed) {
        this.releaseDeflate()
        this.maybeEmitClose()
      }
    })
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
  private releaseDeflate (): void {
    if (this.outbox !== null && !this.inflating) this.outbox.deflate.close()
  }

  /**
   * Iterate messages: text as string, binary as Buffer. Ends when the connection closes.
   * While iterating, 'message' listeners are not called (the iterator consumes the queue).
   */
  async * [Symbol.asyncIterator] (): AsyncGenerator<MessageData, void, undefined> {
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


