/**
 * The WebSocket users hold: the Node adapter between a Duplex (net.Socket) and the Sans-I/O core.
 *
 * - One TCP read -> protocol.receive -> events dispatched -> all output produced meanwhile
 *   (echoes, pongs, the close echo) leaves in one write.
 * - Messages that arrive before anybody listens are queued, and reading pauses while the queue
 *   is over its bound, so nothing accepted is lost and memory stays bounded.
 * - 'close' is emitted exactly once, after the transport has closed.
 */
import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { CloseCode, Defaults } from '../protocol/constants.js'
import { type ProtocolError, WebSocketUsageError } from '../protocol/errors.js'
import { type ProtocolEvent, ReadyState, toBuffer, WebSocketProtocol } from '../protocol/protocol.js'

export { ReadyState }

export interface WebSocketOptions {
  role?: 'server' | 'client'
  maxPayload?: number
  maxFragments?: number
  /** ms to wait for the peer's Close frame / TCP close after we close; then the socket is destroyed */
  closeTimeout?: number
  /** negotiated subprotocol ('' when none) */
  protocol?: string
  /** queued inbound messages (nobody consuming yet) before reading pauses */
  maxQueuedMessages?: number
  /** queued inbound bytes before reading pauses */
  maxQueuedBytes?: number
  /** called when a listener throws; the socket is closed with 1011 afterwards */
  onListenerError?: (error: unknown) => void
}

export type MessageData = string | Buffer

interface QueuedMessage { data: Buffer, binary: boolean }

export type SendCallback = (error?: Error | null) => void


function isPlainObject (value: object): boolean {
  if (Array.isArray(value)) return true
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

export class WebSocket extends EventEmitter {
  static readonly CONNECTING = ReadyState.Connecting
  static readonly OPEN = ReadyState.Open
  static readonly CLOSING = ReadyState.Closing
  static readonly CLOSED = ReadyState.Closed

  readonly protocol: string
  private readonly socket: Duplex
  private readonly core: WebSocketProtocol
  private readonly closeTimeout: number
  private readonly maxQueuedMessages: number
  private readonly maxQueuedBytes: number
  private readonly onListenerError: ((error: unknown) => void) | undefined
  private dispatching = false
  private callbacks: SendCallback[] | null = null
  private queue: QueuedMessage[] = []
  private queuedBytes = 0
  private pausedForQueue = false
  private flushQueueScheduled = false
  private iterators = 0
  private iteratorWake: (() => void) | null = null
  private closeTimer: NodeJS.Timeout | null = null
  private closeCode: number = CloseCode.AbnormalClosure
  private closeReason = ''
  private cleanClose = false
  private transportClosed = false
  private emittedClose = false
  private endedOutput = false
  /** the failure that ended this connection, if any */
  failure: ProtocolError | null = null

  constructor (socket: Duplex, options: WebSocketOptions = {}) {
    super()
    this.socket = socket
    this.protocol = options.protocol ?? ''
    this.closeTimeout = options.closeTimeout ?? Defaults.closeTimeout
    this.maxQueuedMessages = options.maxQueuedMessages ?? 1024
    this.maxQueuedBytes = options.maxQueuedBytes ?? Math.max(options.maxPayload ?? Defaults.maxPayload, 1024 * 1024)
    this.onListenerError = options.onListenerError
    this.core = new WebSocketProtocol({
      role: options.role ?? 'server',
      maxPayload: options.maxPayload,
      maxFragments: options.maxFragments
    })
    this.on('newListener', this.onNewListener)
    socket.on('data', this.onData)
    socket.on('end', this.onEnd)
    socket.on('close', this.onTransportClose)
    socket.on('error', this.onSocketError)
    socket.on('drain', this.onDrain)
    const s = socket as Duplex & { setNoDelay?: (v: boolean) => void }
    if (typeof s.setNoDelay === 'function') s.setNoDelay(true)
  }

  /** Feed bytes that arrived with the upgrade request (the `head` of the 'upgrade' event). */
  receive (head: Buffer): void {
    if (head.length > 0) this.onData(head)
  }

  get readyState (): ReadyState {
    if (this.emittedClose || this.transportClosed) return ReadyState.Closed
    return this.core.readyState === ReadyState.Closed ? ReadyState.Closing : this.core.readyState
  }

  /** Bytes accepted by send() and not yet handed to the operating system. */
  get bufferedAmount (): number {
    return this.core.pendingOutput + (this.socket.writableLength ?? 0)
  }

  // ---- inbound ----

  private readonly onData = (chunk: Buffer): void => {
    this.dispatching = true
    try {
      this.core.receive(chunk)
      this.dispatch(this.core.takeEvents())
    } finally {
      this.dispatching = false
    }
    this.flush()
  }

  private dispatch (events: ProtocolEvent[]): void {
    for (let i = 0; i < events.length; i++) {
      const event = events[i]
      switch (event.type) {
        case 'message':
          this.onMessage(event.data, event.binary)
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
          this.failure = event.error
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
  }

  private onMessage (data: Buffer, binary: boolean): void {
    if (this.queue.length === 0 && (this.iterators === 0 && this.listenerCount('message') > 0)) {
      this.safeEmit('message', data, binary)
      return
    }
    this.enqueue(data, binary)
  }

  private enqueue (data: Buffer, binary: boolean): void {
    this.queue.push({ data, binary })
    this.queuedBytes += data.length
    if (this.iteratorWake !== null) {
      const wake = this.iteratorWake
      this.iteratorWake = null
      wake()
    }
    if (!this.pausedForQueue && (this.queue.length >= this.maxQueuedMessages || this.queuedBytes >= this.maxQueuedBytes)) {
      this.pausedForQueue = true
      this.socket.pause()
    }
  }

  private dequeue (): QueuedMessage | undefined {
    const item = this.queue.shift()
    if (item === undefined) return undefined
    this.queuedBytes -= item.data.length
    if (this.pausedForQueue && this.queue.length < this.maxQueuedMessages / 2 && this.queuedBytes < this.maxQueuedBytes / 2) {
      this.pausedForQueue = false
      this.socket.resume()
    }
    return item
  }

  private readonly onNewListener = (event: string | symbol): void => {
    if (event === 'message' && this.queue.length > 0) this.scheduleQueueFlush()
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
          this.safeEmit('message', item.data, item.binary)
        }
      } finally {
        this.dispatching = false
      }
      this.flush()
      this.maybeEmitClose()
    })
  }

  private safeEmit (event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args)
    } catch (err) {
      this.listenerError(err)
    }
  }

  private listenerError (err: unknown): void {
    if (this.onListenerError !== undefined) {
      try { this.onListenerError(err) } catch { /* the error handler itself failed: still close */ }
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
    let kind: 'text' | 'binary' | 'json'
    if (typeof data === 'string') kind = 'text'
    else if (data !== null && typeof data === 'object' && (Buffer.isBuffer(data) || data instanceof ArrayBuffer || ArrayBuffer.isView(data))) kind = 'binary'
    else if (data !== null && typeof data === 'object' && isPlainObject(data)) kind = 'json'
    else throw new TypeError('send() takes a string, Buffer, ArrayBuffer, typed array, DataView, or a plain object/array (sent as JSON)')
    if (this.core.closing || this.readyState !== ReadyState.Open) {
      if (cb !== undefined) queueMicrotask(() => cb(new WebSocketUsageError('FST_ERR_WS_NOT_OPEN', 'the WebSocket is not open')))
      return false
    }
    if (kind === 'text') this.core.sendText(data as string)
    else if (kind === 'binary') this.core.sendBinary(toBuffer(data as ArrayBuffer))
    else this.core.sendText(JSON.stringify(data))
    if (cb !== undefined) (this.callbacks ??= []).push(cb)
    if (!this.dispatching) this.flush()
    return !(this.socket.writableNeedDrain ?? false)
  }

  /** Send a Ping (payload at most 125 bytes). */
  ping (data?: string | Buffer | ArrayBuffer | ArrayBufferView): void {
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.ping(data)
    if (!this.dispatching) this.flush()
  }

  /** Send an unsolicited Pong (payload at most 125 bytes). */
  pong (data?: string | Buffer | ArrayBuffer | ArrayBufferView): void {
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.pong(data)
    if (!this.dispatching) this.flush()
  }

  /**
   * Start the closing handshake (RFC 6455 §7.1.2). The arguments are checked (a valid code,
   * a reason of at most 123 bytes) and a bad one throws. If the peer does not answer within
   * `closeTimeout` ms the socket is destroyed.
   */
  close (code?: number, reason?: string | Buffer): void {
    this.core.close(code, reason)
    if (this.transportClosed) return
    if (this.closeTimer === null) this.startCloseTimer()
    if (!this.dispatching) this.flush()
  }

  /** Destroy the connection now, without a closing handshake. */
  terminate (): void {
    this.socket.destroy()
  }

  private flush (): void {
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
  }

  /** After the closing handshake (or a failure) the server closes TCP first (§7.1.1). */
  private endOutput (): void {
    if (this.endedOutput) return
    this.endedOutput = true
    if (this.closeTimer === null) this.startCloseTimer()
    if (this.dispatching) {
      queueMicrotask(() => this.endSocket())
    } else {
      this.flush()
      this.endSocket()
    }
  }

  private endSocket (): void {
    this.flush()
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.end()
  }

  private startCloseTimer (): void {
    this.closeTimer = setTimeout(() => {
      this.closeTimer = null
      this.socket.destroy()
    }, this.closeTimeout)
    this.closeTimer.unref()
  }

  private readonly onDrain = (): void => {
    this.safeEmit('drain')
  }

  private readonly onEnd = (): void => {
    this.core.receiveEnd()
    this.dispatch(this.core.takeEvents())
  }

  private readonly onSocketError = (err: Error): void => {
    // peer misbehaviour (reset, broken pipe) is not an application error: 'close' tells it
    this.emit('transportError', err)
  }

  private readonly onTransportClose = (): void => {
    this.transportClosed = true
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer)
      this.closeTimer = null
    }
    this.core.receiveEnd()
    this.core.takeEvents()
    this.core.takeOutput()
    this.socket.removeListener('data', this.onData)
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
    if (this.queue.length > 0 && (this.iterators > 0 || this.listenerCount('message') > 0)) return
    this.emittedClose = true
    this.queue = []
    this.queuedBytes = 0
    const wasClean = this.cleanClose && this.failure === null
    this.safeEmit('close', this.closeCode, Buffer.from(this.closeReason), wasClean)
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
          yield item.binary ? item.data : item.data.toString('utf8')
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


