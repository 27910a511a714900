/**
 * The WebSocket users hold: the Node adapter between a Duplex (net.Socket) and the Sans-I/O core.
 *
 * - One TCP read -> protocol.receive -> events dispatched -> all output produced meanwhile
 *   (echoes, pongs, the close echo), and whatever else this tick sends to the socket, leaves in
 *   one write at the end of the tick (./outlet.ts).
 * - Messages that arrive before anybody listens are queued, and reading pauses while the queue
 *   is over its bound, so nothing accepted is lost and memory stays bounded.
 * - 'close' is emitted exactly once, after the transport has closed.
 *
 * One object per connection, in four class layers: its state (ConnectionState,
 * ./connection-state.ts), its inbound side (InboundConnection, ./inbound.ts: reads, events,
 * message delivery, pausing), its outbound side (OutboundConnection, ./outbound.ts: send,
 * prepared frames, limits, flushing) and this class (closing, liveness, topics, the socket's
 * events). Topics are the hub's (../topics/hub.ts): the socket's methods delegate to it.
 */
import type { Duplex } from 'node:stream'
import { CloseCode } from '../protocol/constants.js'
import { argumentError, ProtocolError, WebSocketUsageError } from '../protocol/errors.js'
import { checkCloseArguments, controlPayload, ReadyState } from '../protocol/protocol.js'
import { checkSince } from '../topics/envelope.js'
import type { HistoryPosition } from '../topics/history.js'
import { checkTopic, type TopicHub } from '../topics/hub.js'
import { type ExpiryReason, kExpire, kHeartbeatPing } from './heartbeat.js'
import { kDrop } from './inbound.js'
import { kConnection as kWebSocket, OutboundConnection } from './outbound.js'
import { lendReads } from './shared-reads.js'
import type { Sendable, SocketPublishOptions, SubscribeOptions, WebSocketOptions } from './types.js'

/** the close code of a connection whose credentials expired (a private-use code, RFC 6455 §7.4.2) */
export const CredentialsCloseCode = 4401

const NO_TOPICS: ReadonlySet<string> = new Set()

/** output of at most this many bytes in several chunks is joined into one buffer before the write */
const COALESCE_LIMIT = 64 * 1024
const FINAL = { fin: true, rsv: 0 }
const FRAGMENT = { fin: false, rsv: 0 }

export { ReadyState }

export type { MessageData, Sendable, SendableData, SendCallback, SendOptions, SocketPublishOptions, SubscribeOptions, WebSocketEvents, WebSocketOptions } from './types.js'

/** Sets the positions of the upgrade's `resume` query parameter on a socket (the plugin does). */
export const kResumePositions = Symbol('fastify-rfc6455.resumePositions')

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

export class WebSocket extends OutboundConnection {
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
    this.startLiveness(settings.liveness, settings.budget)
    // reading into the shared buffer has no 'data' listener to start the flow (a socket its owner
    // paused on purpose stays paused, as it would with a 'data' listener)
    if (lent && socket.readableFlowing !== false) socket.resume()
  }

  /** Feed bytes that arrived with the upgrade request (the `head` of the 'upgrade' event). */
  receive (head: Buffer): void {
    if (head.length > 0) this.onData(head, false)
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

  // ---- liveness (the shared clock in ./heartbeat.ts calls these) ----

  // called by the shared liveness clock (symbol keys: not part of the public API)
  [kHeartbeatPing] (): void {
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.ping()
    this.scheduleFlush()
  }

  [kExpire] (reason: ExpiryReason): void {
    this.more().expiredBy = reason
    if (reason === 'heartbeat' || this.readyState !== ReadyState.Open || this.core.closing) {
      // the peer did not answer a Ping for a whole interval: it is gone, no handshake
      this.terminate()
    } else if (reason === 'credentials') {
      // RFC 6455 §7.4.2: 4000-4999 "reserved for private use"; 4401 as HTTP's 401 Unauthorized
      this.close(CredentialsCloseCode, 'credentials expired')
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

  protected closeOverBudget (): void {
    // RFC 6455 §7.4.1: 1008 "an endpoint is terminating the connection because it has received
    // a message that violates its policy"
    if (this.readyState === ReadyState.Open && !this.core.closing) this.close(CloseCode.PolicyViolation, 'over budget')
  }

  // ---- expiring credentials (the shared clock in ./heartbeat.ts checks the deadline) ----

  /**
   * Close this connection with 4401 'credentials expired' at `deadline` (a Date or ms since the
   * epoch, e.g. a JWT's `exp * 1000`), checked by the shared clock (within a second of it). A
   * later call moves the deadline (a fresh token extends it); `null` removes it.
   */
  expireAt (deadline: Date | number | null): void {
    const at = deadline === null ? 0 : deadline instanceof Date ? deadline.getTime() : deadline
    if (typeof at !== 'number' || !Number.isFinite(at) || at < 0) {
      throw argumentError('type', 'FST_ERR_WS_INVALID_DEADLINE', 'expireAt() takes a Date, a number of ms since the epoch, or null')
    }
    if (this.readyState !== ReadyState.Open) return
    this.setCredentialsDeadline(at)
  }

  /** When the credentials expire (ms since the epoch), or null without a deadline. */
  get expiresAt (): number | null {
    return this.credentialsDeadline
  }

  // ---- topics (publish/subscribe): the hub of ../topics/hub.ts does the work ----

  /**
   * Subscribe to `topic` (a non-empty string). Returns false when already subscribed, or when
   * the socket is not open. Subscriptions end when the socket closes.
   *
   * On a topic with history the peer is answered with `subscribed`: resuming after
   * `options.since` when given, else after the position the upgrade's `resume` parameter gave
   * for the topic (used once), else fresh (see README, Resumable streams).
   */
  subscribe (topic: string, options?: SubscribeOptions): boolean {
    const hub = this.topicHub()
    checkTopic(topic)
    let since: HistoryPosition | undefined
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw argumentError('type', 'FST_ERR_WS_INVALID_SINCE', 'subscribe() options must be an object { since }')
      if (options.since !== undefined) {
        since = checkSince(options.since)
        if (!hub.hasHistory(topic)) throw new WebSocketUsageError('FST_ERR_WS_NO_HISTORY', `topic ${JSON.stringify(topic)} keeps no history: subscribe() cannot resume it (see the plugin option \`history\`)`)
      }
    }
    if (this.readyState !== ReadyState.Open) return false
    const rare = this.more()
    if (since === undefined && rare.resume !== null && rare.resume.has(topic)) {
      since = rare.resume.get(topic)
      rare.resume.delete(topic)
    }
    return hub.add(this, topic, rare.topics ??= new Set(), since)
  }

  /** The positions of the upgrade's `resume` parameter (the plugin sets them; see subscribe()). */
  set [kResumePositions] (positions: Map<string, HistoryPosition>) {
    this.more().resume = positions
  }

  /** Unsubscribe from `topic`; false when not subscribed. */
  unsubscribe (topic: string): boolean {
    const hub = this.topicHub()
    checkTopic(topic)
    const mine = this.rare === null ? null : this.rare.topics
    return mine !== null && hub.remove(this, topic, mine)
  }

  isSubscribed (topic: string): boolean {
    const mine = this.rare === null ? null : this.rare.topics
    return mine !== null && mine.has(topic)
  }

  /** The topics this socket is subscribed to. */
  get topics (): ReadonlySet<string> {
    return (this.rare === null ? null : this.rare.topics) ?? NO_TOPICS
  }

  /**
   * Publish to the subscribers of `topic`: every other subscriber (this socket too with
   * `{ self: true }`) in this process, and through the plugin's adapter in the others. Data as
   * send() takes it. Returns how many local subscribers accepted it.
   */
  publish<T> (topic: string, data: T & Sendable<T>, options?: SocketPublishOptions): number {
    const hub = this.topicHub()
    let self = false
    let binary: boolean | undefined
    if (options !== undefined) {
      if (options === null || typeof options !== 'object') throw argumentError('type', 'FST_ERR_WS_INVALID_PUBLISH_OPTIONS', 'publish() options must be an object { binary, self }')
      if (options.self !== undefined && typeof options.self !== 'boolean') throw argumentError('type', 'FST_ERR_WS_INVALID_PUBLISH_OPTIONS', 'publish() options: self must be a boolean')
      self = options.self === true
      binary = options.binary
    }
    return hub.publish(topic, data, { binary, except: self ? undefined : this })
  }

  private topicHub (): TopicHub {
    const hub = this.settings.topics
    if (hub === undefined) throw new WebSocketUsageError('FST_ERR_WS_NO_TOPICS', 'this WebSocket has no topic hub (the plugin gives one; a standalone WebSocket takes the `topics` option)')
    return hub
  }

  /** Send a Ping (payload at most 125 bytes). */
  ping (data?: string | Buffer | ArrayBuffer | ArrayBufferView): void {
    const payload = controlPayload(data) // bad arguments throw whatever the state
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.ping(payload)
    this.scheduleFlush()
  }

  /** Send an unsolicited Pong (payload at most 125 bytes). */
  pong (data?: string | Buffer | ArrayBuffer | ArrayBufferView): void {
    const payload = controlPayload(data) // bad arguments throw whatever the state
    if (this.readyState !== ReadyState.Open || this.core.closing) return
    this.core.pong(payload)
    this.scheduleFlush()
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
    this.scheduleFlush()
  }

  /** Destroy the connection now, without a closing handshake. */
  terminate (): void {
    this.socket.destroy()
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
    // subscriptions end with the socket
    const topics = this.rare === null ? null : this.rare.topics
    if (topics !== null) this.settings.topics?.removeAll(this, topics)
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


