/**
 * The state of a WebSocket connection, as the base class of WebSocket (./connection.ts): its
 * fields, booleans packed in one integer, the state most connections never need (created on
 * first use) and the setup of its core and compression outbox. A base class rather than an
 * object of its own, so a connection stays one object (memory per connection); the behaviour
 * is in the classes above it: InboundConnection (./inbound.ts), then WebSocket.
 */
import type { BudgetKind } from './budget.js'
import type { Duplex } from 'node:stream'
import { CloseCode } from '../protocol/constants.js'
import type { ProtocolError } from '../protocol/errors.js'
import { type ProtocolEvent, WebSocketProtocol } from '../protocol/protocol.js'
import { PerMessageDeflate } from './deflate.js'
import { useListenerTable } from './listener-table.js'
import { type ExpiryReason, LivenessEmitter, type LivenessOptions } from './heartbeat.js'
import type { PreparedMessage } from './broadcast.js'
import { type Flushable, flushLater } from './outlet.js'
import { CompressionOutbox } from './outbox.js'
import { type ConnectionSettings, type InternalOptions, kContext, kSettings, resolveSettings } from './settings.js'
import type { SendCallback, WebSocketOptions } from './types.js'
import type { HistoryPosition } from '../topics/history.js'

/** Reads who started the closing handshake (for the plugin's close log; not public API). */
export const kCloseInitiator: unique symbol = Symbol('fastify-rfc6455.closeInitiator')

export interface QueuedMessage { data: Buffer, binary: boolean, value: unknown }

/** Boolean state of a WebSocket, packed in one integer (memory per connection). */
export const Flag = {
  Inflating: 1,
  PausedForInflate: 1 << 1,
  Dispatching: 1 << 2,
  PausedForQueue: 1 << 3,
  FlushQueueScheduled: 1 << 4,
  CleanClose: 1 << 5,
  TransportClosed: 1 << 6,
  EmittedClose: 1 << 7,
  EndedOutput: 1 << 8,
  OwedDrain: 1 << 9,
  DrainCheckScheduled: 1 << 10,
  PausedForListeners: 1 << 11,
  PausedForOutput: 1 << 12,
  WatchingListeners: 1 << 13,
  WatchingDrain: 1 << 14,
  /** send(data, { fin: false }) started a message whose last fragment is not sent yet */
  Streaming: 1 << 15,
  /** the message being streamed is binary */
  StreamBinary: 1 << 16,
  /** this connection is in the outlet's list, to be flushed at the end of the tick */
  FlushScheduled: 1 << 17,
  /** a control frame's event waits until the messages already in the compression outbox are written */
  AwaitingOutbox: 1 << 18
} as const

/**
 * What most connections never need, or only once they close: send callbacks, messages waiting
 * for a consumer, permessage-deflate's held events, the async iterator, async listeners in
 * flight, drained() waiters, the close timer, code, reason and failure, counters. One object,
 * created on first use, instead of sixteen fields on every WebSocket (memory per connection).
 */
export class RareState {
  /** callbacks of send() calls whose bytes are not written yet */
  callbacks: SendCallback[] | null = null
  /** messages nobody consumed yet */
  queue: QueuedMessage[] | null = null
  queuedBytes = 0
  closeCode: number = CloseCode.AbnormalClosure
  closeReason = ''
  /** events waiting while a message is inflated, in order */
  held: ProtocolEvent[] | null = null
  heldBytes = 0
  iterators = 0
  iteratorWake: (() => void) | null = null
  closeTimer: NodeJS.Timeout | null = null
  drainWaiters: Array<() => void> | null = null
  /** promises returned by async 'message' listeners, not settled yet, and their bytes */
  pendingListeners = 0
  pendingListenerBytes = 0
  failure: ProtocolError | null = null
  droppedMessages = 0
  expiredBy: ExpiryReason | null = null
  /** the inbound budget that closed the connection (policy 'close') */
  overBudget: BudgetKind | null = null
  /** UTF-8 validation state of the text message being streamed (fin: false) */
  streamUtf8 = 0
  /** prepared messages (broadcast, publish) waiting for the streamed message to end, and their bytes */
  waiting: Array<{ message: PreparedMessage, cb: SendCallback | undefined }> | null = null
  waitingBytes = 0
  /** the topics this connection is subscribed to */
  topics: Set<string> | null = null
  /** the positions of the upgrade's `resume` parameter not used yet (topic history) */
  resume: Map<string, HistoryPosition> | null = null
}

export abstract class ConnectionState extends LivenessEmitter {
  readonly protocol: string
  /** negotiated extensions as answered in the 101 ('' when none) */
  readonly extensions: string
  // Memory: an idle connection is this object, its core (protocol, parser, writer) and its
  // liveness fields (its base class). Settings are shared per route, booleans are bits of `flags`, queues are
  // created when first needed.
  protected readonly settings: ConnectionSettings
  protected flags = 0
  /** state most connections never need, created on first use (see RareState) */
  protected rare: RareState | null = null
  // ---- permessage-deflate: the zlib state is `outbox.deflate` ----
  /** outbound messages waiting for zlib, in send order (permessage-deflate negotiated only) */
  protected readonly outbox: CompressionOutbox | null
  protected readonly socket: Duplex
  protected readonly core: WebSocketProtocol
  /** what the plugin keeps for this connection (request, logger...) */
  readonly [kContext]: unknown

  // the bits of `flags`, read and written like fields
  protected get inflating (): boolean { return (this.flags & Flag.Inflating) !== 0 }
  protected set inflating (on: boolean) { this.flags = on ? this.flags | Flag.Inflating : this.flags & ~Flag.Inflating }
  protected get awaitingOutbox (): boolean { return (this.flags & Flag.AwaitingOutbox) !== 0 }
  protected set awaitingOutbox (on: boolean) { this.flags = on ? this.flags | Flag.AwaitingOutbox : this.flags & ~Flag.AwaitingOutbox }
  protected get pausedForInflate (): boolean { return (this.flags & Flag.PausedForInflate) !== 0 }
  protected set pausedForInflate (on: boolean) { this.flags = on ? this.flags | Flag.PausedForInflate : this.flags & ~Flag.PausedForInflate }
  protected get dispatching (): boolean { return (this.flags & Flag.Dispatching) !== 0 }
  protected set dispatching (on: boolean) { this.flags = on ? this.flags | Flag.Dispatching : this.flags & ~Flag.Dispatching }
  protected get pausedForQueue (): boolean { return (this.flags & Flag.PausedForQueue) !== 0 }
  protected set pausedForQueue (on: boolean) { this.flags = on ? this.flags | Flag.PausedForQueue : this.flags & ~Flag.PausedForQueue }
  protected get flushQueueScheduled (): boolean { return (this.flags & Flag.FlushQueueScheduled) !== 0 }
  protected set flushQueueScheduled (on: boolean) { this.flags = on ? this.flags | Flag.FlushQueueScheduled : this.flags & ~Flag.FlushQueueScheduled }
  protected get cleanClose (): boolean { return (this.flags & Flag.CleanClose) !== 0 }
  protected set cleanClose (on: boolean) { this.flags = on ? this.flags | Flag.CleanClose : this.flags & ~Flag.CleanClose }
  protected get transportClosed (): boolean { return (this.flags & Flag.TransportClosed) !== 0 }
  protected set transportClosed (on: boolean) { this.flags = on ? this.flags | Flag.TransportClosed : this.flags & ~Flag.TransportClosed }
  protected get emittedClose (): boolean { return (this.flags & Flag.EmittedClose) !== 0 }
  protected set emittedClose (on: boolean) { this.flags = on ? this.flags | Flag.EmittedClose : this.flags & ~Flag.EmittedClose }
  protected get endedOutput (): boolean { return (this.flags & Flag.EndedOutput) !== 0 }
  protected set endedOutput (on: boolean) { this.flags = on ? this.flags | Flag.EndedOutput : this.flags & ~Flag.EndedOutput }
  protected get owedDrain (): boolean { return (this.flags & Flag.OwedDrain) !== 0 }
  protected set owedDrain (on: boolean) { this.flags = on ? this.flags | Flag.OwedDrain : this.flags & ~Flag.OwedDrain }
  protected get drainCheckScheduled (): boolean { return (this.flags & Flag.DrainCheckScheduled) !== 0 }
  protected set drainCheckScheduled (on: boolean) { this.flags = on ? this.flags | Flag.DrainCheckScheduled : this.flags & ~Flag.DrainCheckScheduled }
  protected get pausedForListeners (): boolean { return (this.flags & Flag.PausedForListeners) !== 0 }
  protected set pausedForListeners (on: boolean) { this.flags = on ? this.flags | Flag.PausedForListeners : this.flags & ~Flag.PausedForListeners }
  protected get pausedForOutput (): boolean { return (this.flags & Flag.PausedForOutput) !== 0 }
  protected set pausedForOutput (on: boolean) { this.flags = on ? this.flags | Flag.PausedForOutput : this.flags & ~Flag.PausedForOutput }

  /** the failure that ended this connection, if any */
  get failure (): ProtocolError | null { return this.rare === null ? null : this.rare.failure }
  /** messages refused by bufferedAmountPolicy 'drop' */
  get droppedMessages (): number { return this.rare === null ? 0 : this.rare.droppedMessages }
  /** which liveness deadline closed the connection, if any */
  get expiredBy (): ExpiryReason | null { return this.rare === null ? null : this.rare.expiredBy }
  /** 'messages' or 'bytes' when the route's inbound budget closed this connection, else null */
  get overBudget (): BudgetKind | null { return this.rare === null ? null : this.rare.overBudget }
  /** who sent the first Close frame: 'local', 'peer', or undefined (none yet) */
  get [kCloseInitiator] (): 'local' | 'peer' | undefined { return this.core.closeInitiator }

  protected get livenessOptions (): LivenessOptions { return this.settings.liveness }

  protected more (): RareState {
    return this.rare ??= new RareState()
  }

  // the fields of RareState, read and written like fields (a default value written while there
  // is no RareState creates none)
  protected get callbacks (): SendCallback[] | null { return this.rare === null ? null : this.rare.callbacks }
  protected set callbacks (v: SendCallback[] | null) { if (v !== null || this.rare !== null) this.more().callbacks = v }
  protected get queue (): QueuedMessage[] | null { return this.rare === null ? null : this.rare.queue }
  protected set queue (v: QueuedMessage[] | null) { if (v !== null || this.rare !== null) this.more().queue = v }
  protected get queuedBytes (): number { return this.rare === null ? 0 : this.rare.queuedBytes }
  protected set queuedBytes (v: number) { if (v !== 0 || this.rare !== null) this.more().queuedBytes = v }
  protected get closeCode (): number { return this.rare === null ? CloseCode.AbnormalClosure : this.rare.closeCode }
  protected set closeCode (v: number) { if (v !== CloseCode.AbnormalClosure || this.rare !== null) this.more().closeCode = v }
  protected get closeReason (): string { return this.rare === null ? '' : this.rare.closeReason }
  protected set closeReason (v: string) { if (v !== '' || this.rare !== null) this.more().closeReason = v }
  protected get held (): ProtocolEvent[] | null { return this.rare === null ? null : this.rare.held }
  protected set held (v: ProtocolEvent[] | null) { if (v !== null || this.rare !== null) this.more().held = v }
  protected get heldBytes (): number { return this.rare === null ? 0 : this.rare.heldBytes }
  protected set heldBytes (v: number) { if (v !== 0 || this.rare !== null) this.more().heldBytes = v }
  protected get iterators (): number { return this.rare === null ? 0 : this.rare.iterators }
  protected set iterators (v: number) { if (v !== 0 || this.rare !== null) this.more().iterators = v }
  protected get iteratorWake (): (() => void) | null { return this.rare === null ? null : this.rare.iteratorWake }
  protected set iteratorWake (v: (() => void) | null) { if (v !== null || this.rare !== null) this.more().iteratorWake = v }
  protected get closeTimer (): NodeJS.Timeout | null { return this.rare === null ? null : this.rare.closeTimer }
  protected set closeTimer (v: NodeJS.Timeout | null) { if (v !== null || this.rare !== null) this.more().closeTimer = v }
  protected get drainWaiters (): Array<() => void> | null { return this.rare === null ? null : this.rare.drainWaiters }
  protected set drainWaiters (v: Array<() => void> | null) { if (v !== null || this.rare !== null) this.more().drainWaiters = v }
  protected get pendingListeners (): number { return this.rare === null ? 0 : this.rare.pendingListeners }
  protected set pendingListeners (v: number) { if (v !== 0 || this.rare !== null) this.more().pendingListeners = v }
  protected get pendingListenerBytes (): number { return this.rare === null ? 0 : this.rare.pendingListenerBytes }
  protected set pendingListenerBytes (v: number) { if (v !== 0 || this.rare !== null) this.more().pendingListenerBytes = v }

  constructor (socket: Duplex, options: WebSocketOptions) {
    super()
    useListenerTable(this)
    const settings = (options as InternalOptions)[kSettings] ?? resolveSettings(options)
    this.settings = settings
    this[kContext] = (options as InternalOptions)[kContext]
    this.socket = socket
    this.protocol = options.protocol ?? ''
    this.extensions = options.extensions ?? ''
    const pmd = options.perMessageDeflate ?? null
    this.outbox = pmd === null
      ? null
      : new CompressionOutbox(new PerMessageDeflate({ params: pmd.params, maxPayload: settings.maxPayload, level: pmd.level, memLevel: pmd.memLevel }), pmd.threshold ?? 1024, {
        // RFC 7692 §6.1: RSV1 on the first (here: only) frame of a compressed message
        sendRaw: (opcode, data, frame) => this.core.sendFragment(opcode, data, { fin: frame.fin, rsv: frame.compressed ? 4 : 0 }),
        close: (code, reason) => this.core.close(code, reason),
        addCallback: (cb) => { (this.callbacks ??= []).push(cb) },
        flush: () => { this.scheduleFlush() }
      })
    // RFC 7692 §6: RSV1 marks a compressed message only once the extension is negotiated
    this.core = new WebSocketProtocol(this.outbox === null ? settings.core : settings.coreWithDeflate)
  }

  /** Write what the core and the outbox queued (the WebSocket's). */
  protected abstract flush (): void

  /** Write what is queued at the end of this tick, with whatever else is sent meanwhile (./outlet.ts). */
  protected scheduleFlush (): void {
    if ((this.flags & Flag.FlushScheduled) !== 0) return
    this.flags |= Flag.FlushScheduled
    flushLater(this as unknown as Flushable)
  }
}
