/**
 * The Sans-I/O WebSocket connection (RFC 6455 §5-§7): bytes in -> events out, commands in ->
 * bytes out. No sockets, timers or event emitters here.
 *
 *   receive(chunk) / receiveEnd()     feed bytes from the peer; never throw on peer input
 *   sendText / sendBinary / ping / pong / close(code, reason)   queue outgoing frames
 *   takeOutput()                      drain the bytes to write
 *   takeEvents() / takeEvent()        drain parsed events (all, or one at a time)
 *
 * The core answers pings and echoes a Close frame by itself; a protocol violation becomes exactly
 * one Close frame with the right code plus one `fail` event.
 */
import { CloseCode, Defaults, isValidCloseCode, MAX_CLOSE_REASON, MAX_CONTROL_PAYLOAD, Opcode } from './constants.js'
import { argumentError, ProtocolError, WebSocketUsageError } from './errors.js'
import { decodeClosePayload, encodeClosePayload } from './frame.js'
import { FrameParser, type MessageMemory, type ParserOptions, type ParserSink } from './parser.js'
import { type FrameOptions, FrameWriter, NOTHING } from './writer.js'

export const ReadyState = {
  Connecting: 0,
  Open: 1,
  Closing: 2,
  Closed: 3
} as const
export type ReadyState = (typeof ReadyState)[keyof typeof ReadyState]

export type ProtocolEvent =
  | { type: 'message', data: Buffer, binary: boolean, compressed: boolean }
  | { type: 'ping', data: Buffer }
  | { type: 'pong', data: Buffer }
  /** the peer's Close frame arrived (code 1005 when it had no body) */
  | { type: 'close', code: number, reason: string }
  /** the peer violated the protocol; a Close frame with error.closeCode was queued */
  | { type: 'fail', error: ProtocolError }
  /** the transport ended without a Close frame */
  | { type: 'end' }

export interface ProtocolOptions {
  role?: 'server' | 'client'
  maxPayload?: number
  maxFragments?: number
  /** permessage-deflate negotiated: RSV1 is allowed on the first frame of a message */
  allowRsv1?: boolean
  /** memory lent for large binary messages (see MessageMemory); default null: allocated */
  memory?: MessageMemory | null
}

const NO_RSV = { fin: true, rsv: 0 }
const RSV1 = { fin: true, rsv: 4 }
const EMPTY = Buffer.alloc(0)

export type Payload = string | Buffer | ArrayBuffer | ArrayBufferView

/**
 * Bytes of a payload without copying. Anything that is not a string, Buffer, ArrayBuffer or
 * typed array / DataView is a TypeError: never uninitialised or coerced bytes on the wire.
 */
export function toBuffer (data: Exclude<Payload, string>): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (data instanceof ArrayBuffer) return Buffer.from(data)
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  throw argumentError('type', 'FST_ERR_WS_INVALID_DATA', 'data must be a string, Buffer, ArrayBuffer, typed array or DataView')
}

export function controlPayload (data: Payload | undefined): Buffer {
  if (data === undefined) return EMPTY
  const buf = typeof data === 'string' ? Buffer.from(data) : toBuffer(data)
  // §5.5: "All control frames MUST have a payload length of 125 bytes or less"
  if (buf.length > MAX_CONTROL_PAYLOAD) throw argumentError('range', 'FST_ERR_WS_CONTROL_PAYLOAD_TOO_LONG', 'control frame payload must be at most 125 bytes')
  return buf
}

/** Check an application's close(code, reason) arguments (RFC 6455 §7.4). */
export function checkCloseArguments (code: number | undefined, reason: string | Buffer | undefined): void {
  if (code === undefined) {
    if (reason !== undefined && reason.length > 0) {
      throw argumentError('type', 'FST_ERR_WS_CLOSE_REASON_WITHOUT_CODE', 'a close reason needs a close code')
    }
    return
  }
  if (typeof code !== 'number' || !Number.isInteger(code) || !isValidCloseCode(code)) {
    throw argumentError('range', 'FST_ERR_WS_INVALID_CLOSE_CODE', `invalid close code: ${String(code)}`)
  }
  if (reason !== undefined) {
    if (typeof reason !== 'string' && !Buffer.isBuffer(reason)) {
      throw argumentError('type', 'FST_ERR_WS_INVALID_CLOSE_REASON', 'close reason must be a string or Buffer')
    }
    const bytes = typeof reason === 'string' ? Buffer.byteLength(reason) : reason.length
    if (bytes > MAX_CLOSE_REASON) {
      throw argumentError('range', 'FST_ERR_WS_CLOSE_REASON_TOO_LONG', `close reason is ${bytes} bytes, at most ${MAX_CLOSE_REASON} allowed`)
    }
  }
}

/** the empty event queues every connection shares while nothing is queued (frozen: never pushed to) */
const NO_EVENTS: ProtocolEvent[] = Object.freeze([]) as unknown as ProtocolEvent[]
const NO_FLAGS: boolean[] = Object.freeze([]) as unknown as boolean[]

/** bits of WebSocketProtocol's state */
const INPUT_DONE = 1
const CLOSE_SENT = 2
const CLOSE_RECEIVED = 4
const INPUT_ENDED = 8
/** the peer's Close frame came before we sent ours: the peer started the closing handshake */
const PEER_CLOSED_FIRST = 16
/** the adapter has replies of its own still to write (see holdReplies) */
const HOLD_REPLIES = 32

/**
 * Parsers and writers of idle connections. A connection takes a parser when bytes arrive and
 * gives it back once the read left no partial frame or message; it takes a writer when it
 * queues a frame and gives it back when its output is taken. So an idle connection holds
 * neither (memory: ~290 bytes less per idle connection), and a busy one keeps the same objects.
 */
const idleParsers: FrameParser[] = []
const idleWriters: FrameWriter[] = []
const POOL_MAX = 256

function resolveProtocolOptions (options: ProtocolOptions): ParserOptions {
  if (options.role !== undefined && options.maxPayload !== undefined && options.maxFragments !== undefined && options.allowRsv1 !== undefined) {
    return options as ParserOptions // complete already: shared, not copied per connection
  }
  return {
    role: options.role ?? 'server',
    maxPayload: options.maxPayload ?? Defaults.maxPayload,
    maxFragments: options.maxFragments ?? Defaults.maxFragments,
    allowRsv1: options.allowRsv1 ?? false,
    memory: options.memory ?? null
  }
}

export class WebSocketProtocol implements ParserSink {
  private readonly options: ParserOptions
  /** null while idle (see idleParsers) */
  private parser: FrameParser | null = null
  /** null while nothing is queued (see idleWriters) */
  private writer: FrameWriter | null = null
  // Memory: an idle connection shares the frozen empty queues (no arrays of its own); a read
  // that queues events makes new ones, dropped again once everything was taken.
  private events: ProtocolEvent[] = NO_EVENTS
  /** aligned with `events`: the event's reply waits until the event is taken */
  private deferred: boolean[] = NO_FLAGS
  /** events[head..] are not taken yet */
  private head = 0
  private untakenMessages = 0
  private untakenDeferred = 0
  /** INPUT_DONE | CLOSE_SENT | CLOSE_RECEIVED | INPUT_ENDED | PEER_CLOSED_FIRST | HOLD_REPLIES (one integer: memory per connection) */
  private bits = 0
  /** the parser saw the peer's Close frame or a violation: no `end` event follows */
  private get inputDone (): boolean { return (this.bits & INPUT_DONE) !== 0 }
  private set inputDone (on: boolean) { this.bits = on ? this.bits | INPUT_DONE : this.bits & ~INPUT_DONE }
  private get closeSent (): boolean { return (this.bits & CLOSE_SENT) !== 0 }
  private set closeSent (on: boolean) { this.bits = on ? this.bits | CLOSE_SENT : this.bits & ~CLOSE_SENT }
  private get closeReceived (): boolean { return (this.bits & CLOSE_RECEIVED) !== 0 }
  private set closeReceived (on: boolean) { this.bits = on ? this.bits | CLOSE_RECEIVED : this.bits & ~CLOSE_RECEIVED }
  private get inputEnded (): boolean { return (this.bits & INPUT_ENDED) !== 0 }
  private set inputEnded (on: boolean) { this.bits = on ? this.bits | INPUT_ENDED : this.bits & ~INPUT_ENDED }
  /** the code/reason of the Close frame we sent, if any */
  sentCloseCode: number | undefined = undefined

  constructor (options: ProtocolOptions = {}) {
    this.options = resolveProtocolOptions(options)
  }

  /** The writer of this connection's output, taken from the pool when needed. */
  private output (): FrameWriter {
    if (this.writer !== null) return this.writer
    const mask = this.options.role === 'client'
    let writer = idleWriters.pop()
    if (writer === undefined) writer = new FrameWriter({ mask })
    else writer.mask = mask
    return (this.writer = writer)
  }

  get readyState (): ReadyState {
    if (this.inputEnded || (this.closeSent && this.closeReceived)) return ReadyState.Closed
    if (this.closeSent || this.closeReceived) return ReadyState.Closing
    return ReadyState.Open
  }

  /** True once no more data frames may be sent (§5.5.1: no data after a Close frame). */
  get closing (): boolean {
    return this.closeSent
  }

  /**
   * Who started the closing handshake (§7.1.2 "Start the WebSocket Closing Handshake"): 'peer'
   * when its Close frame came before ours, 'local' when ours was sent first (a failure
   * included), undefined while no Close frame was sent or received.
   */
  get closeInitiator (): 'local' | 'peer' | undefined {
    if ((this.bits & PEER_CLOSED_FIRST) !== 0) return 'peer'
    return this.closeSent ? 'local' : undefined
  }

  /** Bytes queued and not yet taken by takeOutput(). */
  get pendingOutput (): number {
    return this.writer === null ? 0 : this.writer.pendingBytes
  }

  /** True while an inbound data message has started and not finished (for its deadline). */
  get inMessage (): boolean {
    return this.parser !== null && this.parser.inMessage
  }

  /** Bytes held for an incomplete inbound message. */
  get bufferedInput (): number {
    return this.parser === null ? 0 : this.parser.bufferedBytes
  }

  /**
   * Feed bytes from the peer. Never throws on bad input. The core takes ownership of `chunk`
   * (messages may be views of it), unless `borrowed`: then it keeps no reference to `chunk`
   * once receive() returns, and the caller may overwrite it (see FrameParser.push).
   */
  receive (chunk: Buffer, borrowed = false): void {
    if (this.inputEnded || this.inputDone) return
    let parser = this.parser
    if (parser === null) {
      const reused = idleParsers.pop()
      if (reused === undefined) parser = new FrameParser(this, this.options)
      else (parser = reused).reset(this, this.options)
      this.parser = parser
    }
    parser.push(chunk, borrowed)
    // sinks only queue events, so nothing else used the parser meanwhile
    if (parser.idle) {
      this.parser = null
      parser.park()
      if (idleParsers.length < POOL_MAX) idleParsers.push(parser)
    }
  }

  /** The transport ended (TCP FIN or reset). */
  receiveEnd (): void {
    if (this.inputEnded) return
    this.inputEnded = true
    if (this.parser !== null) this.parser.stop()
    if (!this.inputDone) this.queue({ type: 'end' })
  }

  /** Take every pending event (replies that waited for them are queued meanwhile, in order). */
  takeEvents (): ProtocolEvent[] {
    if (this.head === 0 && this.untakenDeferred === 0) {
      const events = this.events
      if (events.length === 0) return NO_EVENTS
      this.events = NO_EVENTS
      this.deferred = NO_FLAGS
      this.untakenMessages = 0
      return events
    }
    const out: ProtocolEvent[] = []
    let event
    while ((event = this.takeEvent()) !== undefined) out.push(event)
    return out
  }

  /** Events queued and not taken yet. */
  get pendingEvents (): number {
    return this.events.length - this.head
  }

  /** The type of the next event takeEvent() would return, without taking it. */
  get nextEventType (): ProtocolEvent['type'] | undefined {
    return this.head < this.events.length ? this.events[this.head].type : undefined
  }

  /**
   * While true, the reply of every control frame received (a Pong, the Close echo, the Close of
   * a failure) waits until its event is taken, as it does behind an untaken message. An adapter
   * whose answers to earlier messages are still on their way to the writer (permessage-deflate
   * compresses asynchronously) sets it, and takes those events once its answers are written, so
   * a Close received after a message still follows the answer to that message (§5.5.1: after
   * sending a Close frame, an endpoint sends no more data frames).
   */
  get holdReplies (): boolean {
    return (this.bits & HOLD_REPLIES) !== 0
  }

  set holdReplies (on: boolean) {
    this.bits = on ? this.bits | HOLD_REPLIES : this.bits & ~HOLD_REPLIES
  }

  /**
   * Take the next event. An adapter that hands messages to an application takes them one at a
   * time, so that what the application sends in answer to a message is queued before a reply
   * the core owes for a later frame of the same read (see queue()).
   */
  takeEvent (): ProtocolEvent | undefined {
    if (this.head === this.events.length) return undefined
    const i = this.head++
    const event = this.events[i]
    if (event.type === 'message') {
      this.untakenMessages--
    } else if (this.deferred[i]) {
      this.untakenDeferred--
      this.reply(event)
    }
    if (this.head === this.events.length) {
      this.events = NO_EVENTS
      this.deferred = NO_FLAGS
      this.head = 0
    }
    return event
  }

  /**
   * Queue an event. Its reply (the pong of a Ping, the echo of a Close, the Close of a failure)
   * is queued at once, unless a message queued before it is not taken yet: then the reply waits
   * until this event is taken. So a message and a Close arriving in one read are answered in
   * order (the application's answer to the message, then the close echo), and the connection
   * still reads as open while the application handles that message.
   */
  private queue (event: ProtocolEvent): void {
    const defer = this.untakenMessages > 0 || this.untakenDeferred > 0 || (this.bits & HOLD_REPLIES) !== 0
    if (this.events === NO_EVENTS) {
      this.events = []
      this.deferred = []
    }
    this.events.push(event)
    this.deferred.push(defer)
    if (event.type === 'message') this.untakenMessages++
    else if (defer) this.untakenDeferred++
    else this.reply(event)
  }

  private reply (event: ProtocolEvent): void {
    switch (event.type) {
      case 'ping':
        // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response,
        // unless it already received a Close frame." with "identical Application data".
        if (!this.closeSent) this.output().frame(Opcode.Pong, event.data, NO_RSV)
        return
      case 'close':
        this.closeReceived = true
        // §5.5.1: "If an endpoint receives a Close frame and did not previously send a Close
        // frame, the endpoint MUST send a Close frame in response." (echoing the status code)
        if (!this.closeSent) {
          this.queueClose(event.code === CloseCode.NoStatusReceived ? undefined : event.code, '')
        }
        return
      case 'fail':
        // §7.1.7: _Fail the WebSocket Connection_: send a Close frame with the code, then close TCP
        if (!this.closeSent && !this.inputEnded) this.queueClose(event.error.closeCode, '')
        this.closeReceived = true
    }
  }

  takeOutput (): Buffer[] {
    const writer = this.writer
    if (writer === null) return NOTHING
    const out = writer.take()
    // taken: the writer holds nothing now
    this.writer = null
    if (idleWriters.length < POOL_MAX) idleWriters.push(writer)
    return out
  }

  private assertCanSend (): void {
    if (this.closeSent || this.inputEnded) {
      throw new WebSocketUsageError('FST_ERR_WS_NOT_OPEN', 'the WebSocket is closing or closed')
    }
  }

  sendText (data: string, options?: { compressed?: boolean }): void {
    this.assertCanSend()
    this.output().textFrame(Opcode.Text, data, options?.compressed === true ? RSV1 : NO_RSV)
  }

  sendBinary (data: Exclude<Payload, string>, options?: { compressed?: boolean }): void {
    this.assertCanSend()
    this.output().frame(Opcode.Binary, toBuffer(data), options?.compressed === true ? RSV1 : NO_RSV)
  }

  /** Queue an already-encoded message payload as text or binary (used after compression). */
  sendRaw (opcode: typeof Opcode.Text | typeof Opcode.Binary, data: Buffer, options: { compressed: boolean }): void {
    this.assertCanSend()
    this.output().frame(opcode, data, options.compressed ? RSV1 : NO_RSV)
  }

  /** Queue one frame of a fragmented message (§5.4); the caller sequences opcode and fin. */
  sendFragment (opcode: number, data: Buffer, options: { fin: boolean, rsv?: number }): void {
    this.assertCanSend()
    this.output().frame(opcode, data, { fin: options.fin, rsv: options.rsv ?? 0 })
  }

  /**
   * Queue one data frame, a whole message or one fragment of it (§5.4: the caller sequences the
   * opcode, Continuation after the first fragment, and FIN on the last); a string is encoded
   * as UTF-8 straight into place.
   */
  sendData (opcode: number, data: string | Buffer, options: FrameOptions): void {
    this.assertCanSend()
    if (typeof data === 'string') this.output().textFrame(opcode, data, options)
    else this.output().frame(opcode, data, options)
  }

  /** Queue a whole frame encoded already, e.g. one message framed once for many connections. */
  sendEncoded (frame: Buffer): void {
    this.assertCanSend()
    this.output().encoded(frame)
  }

  ping (data?: Payload): void {
    const payload = controlPayload(data)
    this.assertCanSend()
    this.output().frame(Opcode.Ping, payload, NO_RSV)
  }

  pong (data?: Payload): void {
    const payload = controlPayload(data)
    this.assertCanSend()
    this.output().frame(Opcode.Pong, payload, NO_RSV)
  }

  /**
   * Start (or answer) the closing handshake. §5.5.1: "after sending a Close frame, the endpoint
   * MUST NOT send any more data frames". A second call is a no-op.
   */
  close (code?: number, reason?: string | Buffer): void {
    checkCloseArguments(code, reason)
    if (this.closeSent || this.inputEnded) return
    this.queueClose(code, reason ?? '')
  }

  private queueClose (code: number | undefined, reason: string | Buffer): void {
    this.closeSent = true
    this.sentCloseCode = code
    this.output().frame(Opcode.Close, encodeClosePayload(code, reason), NO_RSV)
  }

  // ParserSink

  onMessage (data: Buffer, binary: boolean, compressed: boolean): void {
    this.queue({ type: 'message', data, binary, compressed })
  }

  onControl (opcode: number, payload: Buffer): void {
    switch (opcode) {
      case Opcode.Ping:
        // answered with a Pong in reply()
        this.queue({ type: 'ping', data: payload })
        return
      case Opcode.Pong:
        this.queue({ type: 'pong', data: payload })
        return
      case Opcode.Close: {
        let close
        try {
          close = decodeClosePayload(payload)
        } catch (err) {
          this.onFail(err as ProtocolError)
          return
        }
        this.inputDone = true
        this.parser?.stop()
        if (!this.closeSent) this.bits |= PEER_CLOSED_FIRST
        // echoed in reply()
        this.queue({ type: 'close', code: close.code, reason: close.reason })
      }
    }
  }

  onFail (error: ProtocolError): void {
    this.parser?.stop()
    this.inputDone = true
    // the failing Close frame is queued in reply()
    this.queue({ type: 'fail', error })
  }
}
