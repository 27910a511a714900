/**
 * The outbound side of a WebSocket, as a base class of WebSocket (./connection.ts): send() with
 * ws's options (fragments, forced opcode, no compression), prepared frames of broadcasts and
 * publications, maxBufferedAmount, 'drain', and the flush the outlet (./outlet.ts) runs at the
 * end of the tick. A base class rather than an object of its own, so a connection stays one
 * object (memory per connection); closing is WebSocket's (the abstract member below).
 */
import type { Duplex } from 'node:stream'
import { CloseCode, Opcode } from '../protocol/constants.js'
import { argumentError, WebSocketUsageError } from '../protocol/errors.js'
import { ReadyState, toBuffer } from '../protocol/protocol.js'
import { UTF8_ACCEPT, UTF8_REJECT, validateUtf8 } from '../protocol/utf8.js'
import type { PreparedMessage } from './broadcast.js'
import { Flag } from './connection-state.js'
import { InboundConnection } from './inbound.js'
import { holdSlab, ownBytes, slabOf } from './message-pool.js'
import { kFlushNow } from './outlet.js'
import { OfferModes } from './outbox.js'
import { callbackError, kSerialize, type PayloadKind, payloadKind, SendFlag, sendFlags } from './payload.js'
import type { Sendable, SendCallback, SendOptions } from './types.js'

/** output of at most this many bytes in several chunks is joined into one buffer before the write */
const COALESCE_LIMIT = 64 * 1024
const FINAL = { fin: true, rsv: 0 }
const FRAGMENT = { fin: false, rsv: 0 }

/** the connection a socket belongs to (set by WebSocket's constructor), for the shared listeners */
export const kConnection: unique symbol = Symbol('fastify-rfc6455.websocket')
// a shared listener (`this` is the emitter), not a closure per connection
function socketOnDrain (this: Duplex): void { (this as Duplex & { [kConnection]: OutboundConnection })[kConnection]['onDrain']() }

export abstract class OutboundConnection extends InboundConnection {
  /** Start the closing handshake (WebSocket's). */
  abstract close (code?: number, reason?: string | Buffer): void

  get readyState (): ReadyState {
    if (this.emittedClose || this.transportClosed) return ReadyState.Closed
    if (this.outbox !== null && this.outbox.closeDeferred) return ReadyState.Closing
    return this.core.readyState === ReadyState.Closed ? ReadyState.Closing : this.core.readyState
  }

  /** how this socket serializes plain objects and arrays (its route's schema.outbound, else JSON) */
  get [kSerialize] (): (value: unknown) => string {
    return this.settings.serialize
  }

  /** Bytes accepted by send() and not yet handed to the operating system. */
  get bufferedAmount (): number {
    return this.core.pendingOutput + (this.socket.writableLength ?? 0) + (this.outbox === null ? 0 : this.outbox.bytes) +
      (this.rare === null ? 0 : this.rare.waitingBytes)
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
    if (this.outbox !== null && this.outbox.offer(typeof payload === 'string' ? Opcode.Text : Opcode.Binary, ownBytes(payload), cb, OfferModes.normal)) {
      this.sawMessage()
      if (this.settings.meter !== undefined) this.settings.meter.sent(this, payload.length, typeof payload !== 'string')
      return this.sendResult()
    }
    if (typeof payload === 'string') {
      this.core.sendText(payload)
    } else {
      this.core.sendBinary(payload)
      this.holdLent(payload)
    }
    this.sawMessage()
    if (this.settings.meter !== undefined) this.settings.meter.sent(this, payload.length, typeof payload !== 'string')
    if (cb !== undefined) (this.callbacks ??= []).push(cb)
    this.scheduleFlush()
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
    if (this.outbox === null || !this.outbox.offer(opcode, ownBytes(payload), cb, mode)) {
      this.core.sendData(opcode, payload, more ? FRAGMENT : FINAL)
      if (typeof payload !== 'string') this.holdLent(payload)
      if (cb !== undefined) (this.callbacks ??= []).push(cb)
      this.scheduleFlush()
    }
    this.sawMessage()
    if (!more && this.settings.meter !== undefined) this.settings.meter.sent(this, payload.length, binary)
    if (more) {
      this.flags |= binary ? Flag.Streaming | Flag.StreamBinary : Flag.Streaming
      if (utf8 !== UTF8_ACCEPT || this.rare !== null) this.more().streamUtf8 = utf8
    } else if (streaming) {
      this.endStream()
    }
    return this.sendResult()
  }

  /**
   * Lent bytes (lentMessages, ./message-pool.ts) queued by reference: their slab is held until
   * the socket's write of them completes (the flush's callbacks), so a slab is not reused for a
   * later message while its bytes still wait to be written.
   */
  private holdLent (payload: Buffer): void {
    const slab = slabOf(payload)
    if (slab === undefined) return
    holdSlab(slab)
    ;(this.callbacks ??= []).push(slab.release)
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
  protected abandonStream (): void {
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
      this.send(message.payload, { binary: message.binary }, cb)
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
    // the frame joins this socket's output like any other: same order, same write
    this.core.sendEncoded(message.frame)
    if (cb !== undefined) (this.callbacks ??= []).push(cb)
    this.sawMessage()
    if (this.settings.meter !== undefined) this.settings.meter.sent(this, message.payload.length, message.binary)
    this.scheduleFlush()
    this.sendResult()
    return true
  }

  /** send()'s answer: false while backed up, and then a 'drain' is owed. */
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
      this.settings.meter?.overLimit(this, size, 'buffer', 'drop')
      this.safeEmit('dropped', size, error)
    } else {
      this.settings.meter?.overLimit(this, size, 'buffer', 'close')
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

  protected releaseDrainWaiters (): void {
    const waiters = this.drainWaiters
    if (waiters === null) return
    this.drainWaiters = null
    for (const resolve of waiters) resolve()
  }

  /** The outlet's call (./outlet.ts): the flush this socket asked for at the end of the tick. */
  [kFlushNow] (): void {
    this.flags &= ~Flag.FlushScheduled
    try {
      this.flush()
    } catch (err) {
      // nothing a flush runs should throw; if it does, this socket fails alone, not the outlet
      this.listenerError(err)
    }
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
      this.writeChunks(chunks, done)
    }
    this.watchDrain()
    if (this.owedDrain) this.checkDrain()
    if (this.pausedForOutput) this.relieveOutputPressure()
  }

  /**
   * Several chunks (frames of several sends, prepared frames of broadcasts and publications):
   * small ones are joined into one buffer and written once (a copy of a few KiB costs less than
   * a write per chunk); large ones are written corked, without a copy.
   */
  private writeChunks (chunks: Buffer[], done: SendCallback | undefined): void {
    let total = 0
    for (let i = 0; i < chunks.length; i++) total += chunks[i].length
    if (total <= COALESCE_LIMIT) {
      this.socket.write(Buffer.concat(chunks, total), done)
      return
    }
    this.socket.cork()
    const last = chunks.length - 1
    for (let i = 0; i < last; i++) this.socket.write(chunks[i])
    this.socket.write(chunks[last], done)
    this.socket.uncork()
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

  private onDrain (): void {
    this.relieveOutputPressure()
    if (this.owedDrain) this.checkDrain()
    else this.safeEmit('drain')
  }
}
