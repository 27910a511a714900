/**
 * The WebSocket users hold: the Node adapter between a Duplex (net.Socket) and the Sans-I/O core.
 *
 * - One TCP read -> protocol.receive -> events dispatched -> all output produced meanwhile
 *   (echoes, pongs, the close echo) leaves in one write.
 * - Messages that arrive before anybody listens are queued, and reading pauses while the queue
 *   is over its bound, so nothing accepted is lost and memory stays bounded.
 * - 'close' is emitted exactly once, after the transport has closed.
 *
 * One object per connection, in three class layers: its state (ConnectionState,
 * ./connection-state.ts), its inbound side (InboundConnection, ./inbound.ts: reads, events,
 * message delivery, pausing) and this class (sending, closing, liveness, the socket's events).
 */
import type { Duplex } from 'node:stream'
import { CloseCode, Opcode } from '../protocol/constants.js'
import { argumentError, ProtocolError, WebSocketUsageError } from '../protocol/errors.js'
import { UTF8_ACCEPT, UTF8_REJECT, validateUtf8 } from '../protocol/utf8.js'
import { ReadyState, toBuffer } from '../protocol/protocol.js'
import { Flag } from './connection-state.js'
import { type ExpiryReason, kExpire, kHeartbeatPing } from './heartbeat.js'
import { InboundConnection, kDrop } from './inbound.js'
import { checkCloseArguments, controlPayload } from '../protocol/protocol.js'
import type { PreparedMessage } from './broadcast.js'
import { OfferModes } from './outbox.js'
import { callbackError, type PayloadKind, payloadKind, SendFlag, sendFlags } from './payload.js'
import { lendReads } from './shared-reads.js'
import type { Sendable, SendCallback, SendOptions, WebSocketOptions } from './types.js'

const FINAL = { fin: true, rsv: 0 }
const FRAGMENT = { fin: false, rsv: 0 }

export { ReadyState }

export type { MessageData, Sendable, SendCallback, SendOptions, WebSocketEvents, WebSocketOptions } from './types.js'

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

export class WebSocket extends InboundConnection {
  static readonly CONNECTING = ReadyState.Connecting
  static readonly OPEN = ReadyState.Open
  static readonly CLOSING = ReadyState.Closing
  static readonly CLOSED = ReadyState.Closed
  /** returned by the `inbound` option to drop a message */
  static readonly DROP: typeof kDrop = kDrop

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
    return this.core.pendingOutput + (this.socket.writableLength ?? 0) + (this.outbox === null ? 0 : this.outbox.bytes) +
      (this.rare === null ? 0 : this.rare.waitingBytes)
  }

  /** A listener or hook threw, or an async listener's promise rejected (the inbound side's too). */
  protected listenerError (err: unknown): void {
    const onListenerError = this.settings.onListenerError
    if (onListenerError !== undefined) {
      try { onListenerError.call(this, err) } catch { /* the error handler itself failed: still close */ }
    }
    // an unexpected exception closes with 1011 and no internal detail
    if (this.readyState === ReadyState.Open) this.close(CloseCode.InternalError)
  }

  // ---- outbound ----

  /**
   * Send a message, with ws's signature: `send(data, [options], [cb])`. A string goes as text; a
   * Buffer, ArrayBuffer, typed array or DataView as binary; a plain object or array as JSON text.
   * Options: `binary` forces the opcode (bytes sent as text must be UTF-8), `compress: false`
   * skips permessage-deflate for this message, `fin: false` streams the message in fragments
   * (the next send() calls continue it until one without `fin: false`), `mask` must be false.
   * Bad arguments throw at the call (coded). Returns false when the message was not sent (not
   * open) or the socket is backed up (wait for 'drain').
   */
  send<T> (data: T & Sendable<T>, cb?: SendCallback): boolean
  send<T> (data: T & Sendable<T>, options: SendOptions | undefined, cb?: SendCallback): boolean
  send (data: unknown, optionsOrCb?: SendOptions | SendCallback, maybeCb?: SendCallback): boolean {
    let flags = 0
    let cb: SendCallback | undefined
    if (typeof optionsOrCb === 'function') {
      if (maybeCb !== undefined) throw callbackError()
      cb = optionsOrCb
    } else {
      if (optionsOrCb !== undefined) flags = sendFlags(optionsOrCb, this.settings.role)
      if (maybeCb !== undefined && typeof maybeCb !== 'function') throw callbackError()
      cb = maybeCb
    }
    const kind = payloadKind(data, 'send')
    if (flags !== 0 || (this.flags & Flag.Streaming) !== 0) return this.sendWithOptions(kind, data, flags, cb)
    if (this.core.closing || this.readyState !== ReadyState.Open) return this.notOpen(cb)
    const payload: string | Buffer = kind === 'text' ? data as string : kind === 'binary' ? toBuffer(data as ArrayBuffer) : this.settings.serialize(data)
    if (!this.admit(payload, cb)) return false
    if (this.outbox !== null && this.outbox.offer(typeof payload === 'string' ? Opcode.Text : Opcode.Binary, payload, cb, OfferModes.normal)) {
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

  /** send() with options, or while a message is streamed in fragments (RFC 6455 §5.4). */
  private sendWithOptions (kind: PayloadKind, data: unknown, flags: number, cb: SendCallback | undefined): boolean {
    const streaming = (this.flags & Flag.Streaming) !== 0
    const more = (flags & SendFlag.More) !== 0
    // the fragments of one message share its type: continuations follow the first fragment's
    const binary = streaming
      ? (this.flags & Flag.StreamBinary) !== 0
      : (flags & SendFlag.BinarySet) !== 0 ? (flags & SendFlag.Binary) !== 0 : kind === 'binary'
    let payload: string | Buffer = kind === 'text' ? data as string : kind === 'binary' ? toBuffer(data as ArrayBuffer) : this.settings.serialize(data)
    let utf8 = UTF8_ACCEPT
    if (binary) {
      if (typeof payload === 'string') payload = Buffer.from(payload)
    } else if (typeof payload !== 'string' || (streaming && this.more().streamUtf8 !== UTF8_ACCEPT)) {
      // RFC 6455 §5.6: "The "Payload data" is text data encoded as UTF-8"; §8.1 a peer fails
      // the connection on invalid UTF-8, so bytes sent as text are checked here, across fragments
      if (typeof payload === 'string') payload = Buffer.from(payload)
      utf8 = validateUtf8(payload, 0, payload.length, streaming ? this.more().streamUtf8 : UTF8_ACCEPT)
      if (utf8 === UTF8_REJECT || (!more && utf8 !== UTF8_ACCEPT)) {
        throw argumentError('type', 'FST_ERR_WS_INVALID_UTF8', 'bytes sent as a text message (binary: false) must be valid UTF-8')
      }
    }
    if (this.core.closing || this.readyState !== ReadyState.Open) return this.notOpen(cb)
    // a fragment of a started message cannot be dropped without corrupting it: over the limit,
    // the connection closes whatever the policy
    if (!this.admit(payload, cb, streaming ? 'close' : this.settings.bufferedAmountPolicy)) return false
    const opcode = streaming ? Opcode.Continuation : binary ? Opcode.Binary : Opcode.Text
    const mode = more ? OfferModes.fragment : (flags & SendFlag.NoCompress) !== 0 ? OfferModes.uncompressed : OfferModes.normal
    if (this.outbox === null || !this.outbox.offer(opcode, payload, cb, mode)) {
      this.core.sendData(opcode, payload, more ? FRAGMENT : FINAL)
      if (cb !== undefined) (this.callbacks ??= []).push(cb)
      if (!this.dispatching) this.flush()
    }
    this.sawMessage()
    if (more) {
      this.flags |= binary ? Flag.Streaming | Flag.StreamBinary : Flag.Streaming
      if (utf8 !== UTF8_ACCEPT || this.rare !== null) this.more().streamUtf8 = utf8
    } else if (streaming) {
      this.endStream()
    }
    return this.sendResult()
  }

  /** The streamed message ended: prepared messages that waited for it go now, in order. */
  private endStream (): void {
    this.flags &= ~(Flag.Streaming | Flag.StreamBinary)
    const rare = this.rare
    if (rare === null) return
    rare.streamUtf8 = UTF8_ACCEPT
    const waiting = rare.waiting
    if (waiting === null) return
    rare.waiting = null
    rare.waitingBytes = 0
    for (const { message, cb } of waiting) this.sendPrepared(message, cb)
  }

  /** The connection closes while a message streams: what waited for it is not sent. */
  private abandonStream (): void {
    if ((this.flags & Flag.Streaming) === 0) return
    this.flags &= ~(Flag.Streaming | Flag.StreamBinary)
    const rare = this.more()
    const waiting = rare.waiting
    rare.streamUtf8 = UTF8_ACCEPT
    rare.waiting = null
    rare.waitingBytes = 0
    if (waiting !== null) for (const { cb } of waiting) if (cb !== undefined) this.notOpen(cb)
  }

  /** A message that cannot be sent: the connection is not open. */
  private notOpen (cb: SendCallback | undefined): false {
    if (cb !== undefined) queueMicrotask(() => cb(new WebSocketUsageError('FST_ERR_WS_NOT_OPEN', 'the WebSocket is not open')))
    return false
  }

  /**
   * Write a message framed once for many sockets (see broadcast()). The same bytes go to every
   * socket, in order with what this socket already queued (after a message this socket is
   * streaming in fragments). Returns true when the message was queued on this socket (false:
   * not open, or refused by maxBufferedAmount).
   */
  sendPrepared (message: PreparedMessage, cb?: SendCallback): boolean {
    if (this.core.closing || this.readyState !== ReadyState.Open) return this.notOpen(cb)
    // a compressing socket, or one with messages still being compressed, sends its own copy
    if (this.outbox !== null && this.outbox.takes(message.payload.length) && (this.flags & Flag.Streaming) === 0) {
      this.send(message.payload, cb)
      return this.readyState === ReadyState.Open && !this.core.closing
    }
    if (!this.admit(message.frame, cb)) return false
    if ((this.flags & Flag.Streaming) !== 0) {
      // RFC 6455 §5.4: the fragments of a message are not interleaved with other data frames
      const rare = this.more()
      ;(rare.waiting ??= []).push({ message, cb })
      rare.waitingBytes += message.frame.length
      return true
    }
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
  private admit (payload: string | Buffer, cb: SendCallback | undefined, policy = this.settings.bufferedAmountPolicy): boolean {
    const buffered = this.bufferedAmount
    if (buffered === 0) return true
    let size = payload.length
    if (typeof payload === 'string' && buffered + size * 3 > this.settings.maxBufferedAmount) size = Buffer.byteLength(payload)
    if (buffered + size <= this.settings.maxBufferedAmount) return true
    const error = new WebSocketUsageError('FST_ERR_WS_BUFFER_FULL', `bufferedAmount would exceed maxBufferedAmount (${this.settings.maxBufferedAmount} bytes)`)
    if (policy === 'drop') {
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
    checkCloseArguments(code, reason)
    // RFC 6455 §5.5.1: no data frame follows the Close frame, so a streamed message ends here
    this.abandonStream()
    if (this.outbox !== null && this.outbox.length > 0 && !this.core.closing && !this.transportClosed) {
      // permessage-deflate: messages sent before close() are still being compressed
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
  protected endOutput (): void {
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
    this.abandonStream()
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
  protected maybeEmitClose (): void {
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
}


