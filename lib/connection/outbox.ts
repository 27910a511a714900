/**
 * Outbound permessage-deflate (RFC 7692): the messages of one connection that must wait for
 * zlib, kept in send order. A message at or over the threshold is compressed; a message under
 * it still waits here while an earlier one is being compressed, so nothing overtakes. A close()
 * called meanwhile is sent after the last queued message.
 */
import { Opcode } from '../protocol/constants.js'
import { WebSocketUsageError } from '../protocol/errors.js'
import type { PerMessageDeflate } from './deflate.js'
import type { SendCallback } from './types.js'

interface Outgoing { opcode: number, data: Buffer, compress: boolean, fin: boolean, cb: SendCallback | undefined }
/** A place in the queue: `run` is called once every message queued before it is written. */
interface Barrier { run: () => void }

/** How a message offered to the outbox may go: compressed or not, last fragment or not. */
export interface OfferMode {
  /** false: never compress this message (send's `compress: false`) */
  readonly compress: boolean
  /** false: a fragment that more fragments of the same message follow (never compressed) */
  readonly fin: boolean
}
export const OfferModes = {
  normal: { compress: true, fin: true },
  uncompressed: { compress: false, fin: true },
  fragment: { compress: false, fin: false }
} as const satisfies Record<string, OfferMode>

/** What the outbox needs from its connection. */
export interface OutboxHost {
  /** queue an encoded frame (RSV1 when compressed); may throw when the connection is closing */
  sendRaw (opcode: number, data: Buffer, frame: { compressed: boolean, fin: boolean }): void
  /** the deferred close(), once the last queued message is out */
  close (code: number | undefined, reason: string | Buffer | undefined): void
  /** a send() callback to call once the bytes are written */
  addCallback (cb: SendCallback): void
  /** write what the core queued (unless the connection is dispatching and will do it) */
  flush (): void
}

export class CompressionOutbox {
  /** the connection's zlib state (inbound and outbound) */
  readonly deflate: PerMessageDeflate
  private readonly threshold: number
  private readonly host: OutboxHost
  private items: Array<Outgoing | Barrier> = []
  private compressing = false
  /** close() called while messages were queued: the Close frame follows the last of them */
  private deferredClose: { code: number | undefined, reason: string | Buffer | undefined } | null = null
  /** bytes queued here (part of bufferedAmount) */
  bytes = 0

  constructor (deflate: PerMessageDeflate, threshold: number, host: OutboxHost) {
    this.deflate = deflate
    this.threshold = threshold
    this.host = host
  }

  get length (): number {
    return this.items.length
  }

  get closeDeferred (): boolean {
    return this.deferredClose !== null
  }

  /** True when a message of `size` bytes must go through the outbox rather than straight out. */
  takes (size: number): boolean {
    return size >= this.threshold || this.items.length > 0
  }

  /**
   * Route a message (or a fragment: `opcode` Continuation, or `mode.fin` false) through the outbox
   * when it is compressed (at or over the threshold, unless `mode` says not to) or when an
   * earlier message is still being compressed. Returns false when it can go straight out.
   * RFC 7692 §6: a message is compressed or not as a whole, so a fragmented message is sent
   * uncompressed (its first frame without RSV1).
   */
  offer (opcode: number, payload: string | Buffer, cb: SendCallback | undefined, mode: OfferMode): boolean {
    let compress = false
    if (mode.compress && mode.fin && opcode !== Opcode.Continuation) {
      // a string of n UTF-16 units is at least n UTF-8 bytes: counting the bytes (a pass over the
      // string before encoding it) is only needed when the units alone are under the threshold
      const size = typeof payload === 'string'
        ? (payload.length >= this.threshold ? payload.length : Buffer.byteLength(payload))
        : payload.length
      compress = size >= this.threshold
    }
    if (!compress && this.items.length === 0) return false
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload
    this.items.push({ opcode, data, compress, fin: mode.fin, cb })
    this.bytes += data.length
    if (!this.compressing) this.pump()
    return true
  }

  /**
   * Call `run` once every message queued so far has been handed to the connection (compressed
   * or failed); messages offered later wait behind it. Used to answer a control frame only
   * after the answers to the messages received before it.
   */
  afterQueued (run: () => void): void {
    this.items.push({ run })
    if (!this.compressing) this.pump()
  }

  /** Remember a close() to send after the queued messages (the first one wins). */
  deferClose (code: number | undefined, reason: string | Buffer | undefined): void {
    this.deferredClose ??= { code, reason }
  }

  private pump (): void {
    // a barrier's run() may send (and so pump) again: the loop stops at a compression in flight
    while (this.items.length > 0 && !this.compressing) {
      const item = this.items[0]
      if ('run' in item) {
        this.items.shift()
        item.run()
        continue
      }
      if (item.compress) {
        this.compressing = true
        this.deflate.compress(item.data, (error, out) => {
          this.compressing = false
          this.items.shift()
          this.bytes -= item.data.length
          // RFC 7692 §6.1: RSV1 on the first (here: only) frame of a compressed message
          this.send(item, error === null ? out : null)
          this.pump()
          this.host.flush()
        })
        return
      }
      this.items.shift()
      this.bytes -= item.data.length
      this.send(item, item.data)
    }
    if (this.compressing) return
    if (this.deferredClose !== null) {
      const { code, reason } = this.deferredClose
      this.deferredClose = null
      this.host.close(code, reason)
    }
    this.host.flush()
  }

  private send (item: Outgoing, data: Buffer | null): void {
    try {
      if (data === null) throw new WebSocketUsageError('FST_ERR_WS_NOT_OPEN', 'the WebSocket closed before the message was compressed')
      this.host.sendRaw(item.opcode, data, { compressed: item.compress, fin: item.fin })
    } catch (err) {
      const cb = item.cb
      if (cb !== undefined) queueMicrotask(() => cb(err as Error))
      return
    }
    if (item.cb !== undefined) this.host.addCallback(item.cb)
  }
}
