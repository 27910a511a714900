/**
 * Streaming frame parser (RFC 6455 §5): bytes in any chunking -> messages and control frames.
 *
 * An explicit state loop (HEADER / PAYLOAD). Limits are checked from the frame header, before any
 * payload is buffered. Payload bytes are consumed as they arrive: unmasked in place (the parser
 * owns the chunks it is given), UTF-8 checked at once for text, so an invalid message fails as
 * soon as the offending byte is read, even in the middle of a frame.
 *
 * Copies: a message that arrives as one whole frame inside one chunk is delivered as a view of
 * that chunk (no copy). Anything else (fragmented messages, frames split across reads) is copied
 * once into an accumulator that grows by doubling but never beyond the announced frame sizes.
 */
import { CloseCode, MAX_CONTROL_PAYLOAD, Opcode } from './constants.js'
import { ErrorCode, ProtocolError } from './errors.js'
import { decodeHeaderInto, type FrameHeader } from './frame.js'
import { unmaskCopy, unmaskInPlace, unmaskWithKey } from './mask.js'
import { UTF8_ACCEPT, UTF8_REJECT, validateUtf8 } from './utf8.js'

export interface ParserSink {
  onMessage (data: Buffer, binary: boolean, compressed: boolean): void
  onControl (opcode: number, payload: Buffer): void
  onFail (error: ProtocolError): void
}

/** the sink of a parser waiting in a pool: it keeps no connection alive */
const PARKED: ParserSink = { onMessage () {}, onControl () {}, onFail () {} }

export interface ParserOptions {
  /** 'server' requires masked frames (§5.1), 'client' requires unmasked ones */
  role: 'server' | 'client'
  maxPayload: number
  maxFragments: number
  /** RSV1 allowed on the first frame of a data message (permessage-deflate negotiated) */
  allowRsv1: boolean
  /** where the memory of uncompressed single-frame binary messages comes from (lent messages); default: allocated */
  memory?: MessageMemory | null
}

/**
 * Memory for messages that is handed back after use (the adapter's lent messages). The parser
 * asks it for the buffer of an uncompressed binary message whose size the frame header announced
 * (a single frame, FIN set), and drops what it took if the message never completes.
 */
export interface MessageMemory {
  /** a buffer of `size` bytes, or undefined: then the parser allocates one */
  take (size: number): Buffer | undefined
  /** a buffer of take() that will not be delivered (the parser stopped, or was reset) */
  drop (buffer: Buffer): void
}

const HEADER = 0
const PAYLOAD = 1
const STOPPED = 2
const EMPTY = Buffer.alloc(0)
/**
 * The header being read, shared by every parser: its fields are copied by startFrame() before
 * anything else can run (sinks only queue events), so no object is allocated per frame and none
 * is kept per connection.
 */
const scratchHeader: FrameHeader = { fin: false, rsv: 0, opcode: 0, masked: false, payloadLength: 0, headerLength: 0 }
/** smallest middle piece of a split frame kept as a view of its read (see `pieces`) */
const MIN_PIECE = 16 * 1024
const MAX_PIECES = 4096
/** a lent read at least this long, filled to its end, means the peer streams (see accCapacity) */
const STREAMING_READ = 128 * 1024

function protocolError (code: string, message: string): ProtocolError {
  return new ProtocolError(code, CloseCode.ProtocolError, message)
}

export class FrameParser {
  private sink: ParserSink
  private requireMask: boolean
  private maxPayload: number
  private maxFragments: number
  private allowRsv1: boolean
  private memory: MessageMemory | null

  private state: number = HEADER
  /** partial header bytes carried to the next chunk (at most 13) */
  private leftover: Buffer | null = null

  // current frame
  private fin = false
  private opcode = 0
  private masked = false
  /** the frame's masking key, first byte in the top 8 bits (a number, not a typed array: ~340 bytes less per connection) */
  private maskKey = 0
  private keyIndex = 0
  private remaining = 0
  private frameLength = 0
  /** control frame payload, collected when split across reads */
  private control: Buffer | null = null
  private controlLength = 0

  // current data message
  private messageOpcode = 0
  private compressed = false
  private fragments = 0
  private messageLength = 0
  private utf8 = UTF8_ACCEPT
  private acc: Buffer | null = null
  /**
   * Pieces of a single-frame message split across reads, kept as views of the reads (the parser
   * owns them) and copied once when the frame is complete (measured: allocating the whole message
   * at its first piece made that buffer outlive young-generation GCs; joining at the end cost
   * ~1.5x less server CPU per 64 KiB and 1 MiB echo).
   */
  private pieces: Buffer[] | null = null
  /** the pieces are still masked: binary payload is unmasked while it is copied into the message */
  private piecesMasked = false
  /**
   * The chunk being parsed is only lent: its bytes are overwritten after push() returns (the
   * adapter reads every socket into one shared buffer). Nothing may then keep a view of it:
   * messages and control payloads are copied out (unmasked on the way), pieces go straight into
   * the accumulator.
   */
  private borrowed = false

  constructor (sink: ParserSink, options: ParserOptions) {
    this.sink = sink
    this.requireMask = options.role === 'server'
    this.maxPayload = options.maxPayload
    this.maxFragments = options.maxFragments
    this.allowRsv1 = options.allowRsv1
    this.memory = options.memory ?? null
  }

  /**
   * Reuse this parser for another connection (see WebSocketProtocol: idle connections give
   * their parser back to a shared pool). Everything is reset as by the constructor.
   */
  reset (sink: ParserSink, options: ParserOptions): void {
    this.sink = sink
    this.requireMask = options.role === 'server'
    this.maxPayload = options.maxPayload
    this.maxFragments = options.maxFragments
    this.allowRsv1 = options.allowRsv1
    this.dropAcc()
    this.memory = options.memory ?? null
    this.state = HEADER
    this.leftover = null
    this.fin = false
    this.opcode = 0
    this.masked = false
    this.maskKey = 0
    this.keyIndex = 0
    this.remaining = 0
    this.frameLength = 0
    this.control = null
    this.controlLength = 0
    this.endMessage()
    this.acc = null
    this.pieces = null
    this.piecesMasked = false
    this.borrowed = false
  }

  /** No data message in progress. */
  private endMessage (): void {
    this.messageOpcode = 0
    this.compressed = false
    this.messageLength = 0
    this.fragments = 0
    this.utf8 = UTF8_ACCEPT
  }

  /** Back to a pool: drop the reference to the connection's core. */
  park (): void {
    this.sink = PARKED
  }

  /** True between frames with nothing held: no partial header, frame or message. */
  get idle (): boolean {
    return this.state === HEADER && this.leftover === null && this.messageOpcode === 0
  }

  /** Bytes of an incomplete message held in memory (for accounting). */
  get bufferedBytes (): number {
    return this.acc !== null ? this.acc.length : this.pieces !== null ? this.messageLength : 0
  }

  /** True while a data message has started and not finished. */
  get inMessage (): boolean {
    return this.messageOpcode !== 0
  }

  private isStopped (): boolean {
    return this.state === STOPPED
  }

  /** Stop parsing for good (after a Close frame or a failure); later bytes are ignored. */
  stop (): void {
    this.state = STOPPED
    this.leftover = null
    this.dropAcc()
    this.pieces = null
    this.piecesMasked = false
    this.control = null
  }

  /**
   * Feed bytes. The parser takes ownership of `chunk` (payloads are unmasked in place and
   * delivered as views of it), unless `borrowed`: then it keeps nothing of `chunk` once push()
   * returns (see `borrowed`).
   */
  push (chunk: Buffer, borrowed = false): void {
    if (this.state === STOPPED) return
    this.borrowed = borrowed
    if (this.leftover !== null) {
      chunk = Buffer.concat([this.leftover, chunk])
      this.leftover = null
    }
    try {
      this.run(chunk)
    } catch (err) {
      if (err instanceof ProtocolError) this.fail(err)
      else throw err
    }
  }

  private fail (error: ProtocolError): void {
    this.stop()
    this.sink.onFail(error)
  }

  private run (chunk: Buffer): void {
    const end = chunk.length
    let offset = 0
    while (offset < end) {
      if (this.state === HEADER) {
        const header = scratchHeader
        if (!decodeHeaderInto(chunk, offset, end, header)) {
          this.leftover = Buffer.from(chunk.subarray(offset))
          return
        }
        offset += header.headerLength
        this.startFrame(header.fin, header.rsv, header.opcode, header.masked, header.payloadLength)
        if (header.masked) {
          const m = offset - 4
          this.maskKey = (chunk[m] << 24) | (chunk[m + 1] << 16) | (chunk[m + 2] << 8) | chunk[m + 3]
        }
        if (this.remaining === 0) {
          this.endFrame(EMPTY)
          if (this.isStopped()) return
          continue
        }
        // fast path: the whole payload is in this chunk
        if (end - offset >= this.remaining) {
          const n = this.remaining
          let payload: Buffer
          if (this.borrowed && (this.opcode >= 0x8 || (this.fin && this.fragments === 1))) {
            // a lent read: the payload is kept (a message, a control payload), so it is copied
            // out, unmasked on the way (a fragment is copied into the accumulator anyway)
            payload = this.memory === null ? Buffer.allocUnsafe(n) : this.messageBuffer(n)
            if (this.masked) unmaskCopy(chunk, offset, n, payload, 0, this.maskKey, 0)
            else chunk.copy(payload, 0, offset, offset + n)
          } else {
            payload = chunk.subarray(offset, offset + n)
            // the key is still in the chunk, just before the payload
            if (this.masked) unmaskInPlace(chunk, offset, n, chunk, offset - 4, 0)
          }
          offset += n
          this.remaining = 0
          this.wholeFrame(payload)
          if (this.isStopped()) return
          continue
        }
        this.state = PAYLOAD
      }
      if (this.state === PAYLOAD) {
        const n = Math.min(this.remaining, end - offset)
        if (this.borrowed && this.opcode < 0x8) {
          // a lent read: the piece goes straight into the accumulator, unmasked on the way
          this.remaining -= n
          this.appendBorrowed(chunk, offset, n)
          offset += n
          if (this.isStopped()) return
          if (this.remaining === 0) {
            this.endDataFrame()
            if (this.isStopped()) return
          }
          continue
        }
        if (this.masked) {
          // a binary piece kept as a view stays masked until it is copied into the message
          // (one pass over the payload fewer); text is unmasked now for its UTF-8 check
          if (this.opcode < 0x8 && (this.messageOpcode === Opcode.Binary || this.compressed) && this.keepAsPiece(n, this.remaining - n)) {
            this.piecesMasked = true
            this.keyIndex = (this.keyIndex + n) & 3
          } else {
            this.keyIndex = unmaskWithKey(chunk, offset, n, this.maskKey, this.keyIndex)
          }
        }
        const piece = chunk.subarray(offset, offset + n)
        offset += n
        this.remaining -= n
        if (this.opcode >= 0x8) this.appendControl(piece)
        else this.appendData(piece)
        if (this.isStopped()) return
        if (this.remaining === 0) {
          this.state = HEADER
          if (this.opcode >= 0x8) {
            const payload = this.control === null ? EMPTY : this.control.subarray(0, this.controlLength)
            this.control = null
            this.controlLength = 0
            this.endFrame(payload)
          } else {
            this.endDataFrame()
          }
          if (this.isStopped()) return
        }
      } else {
        return
      }
    }
  }

  /** Validate a frame header against every rule of §5 before reading its payload. */
  private startFrame (fin: boolean, rsv: number, opcode: number, masked: boolean, length: number): void {
    // §5.1: "The server MUST close the connection upon receiving a frame that is not masked."
    // §5.1: "A client MUST close a connection if it detects a masked frame."
    if (masked !== this.requireMask) {
      throw protocolError(masked ? ErrorCode.MaskedFrame : ErrorCode.UnmaskedFrame,
        masked ? 'server frames must not be masked' : 'client frames must be masked')
    }
    const isControl = opcode >= 0x8
    if (isControl) {
      // §5.2: "%xB-F are reserved for further control frames"
      if (opcode > Opcode.Pong) throw protocolError(ErrorCode.ReservedOpcode, `reserved opcode ${opcode}`)
      // §5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be fragmented."
      if (!fin) throw protocolError(ErrorCode.FragmentedControl, 'fragmented control frame')
      if (length > MAX_CONTROL_PAYLOAD) throw protocolError(ErrorCode.ControlTooLong, 'control frame payload over 125 bytes')
      // §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines meanings"
      // RFC 7692 §6: permessage-deflate defines RSV1 for data frames only
      if (rsv !== 0) throw protocolError(ErrorCode.ReservedBits, 'reserved bits set on a control frame')
    } else {
      // §5.2: "%x3-7 are reserved for further non-control frames"
      if (opcode > Opcode.Binary) throw protocolError(ErrorCode.ReservedOpcode, `reserved opcode ${opcode}`)
      if (opcode === Opcode.Continuation) {
        // §5.4: continuation frames only inside a fragmented message
        if (this.messageOpcode === 0) throw protocolError(ErrorCode.UnexpectedContinuation, 'continuation frame outside a fragmented message')
        // RFC 7692 §6.1: RSV1 is set on the first frame of a message only
        if (rsv !== 0) throw protocolError(ErrorCode.ReservedBits, 'reserved bits set on a continuation frame')
      } else {
        // §5.4: fragments of one message MUST NOT be interleaved with another data message
        if (this.messageOpcode !== 0) throw protocolError(ErrorCode.ExpectedContinuation, 'new data frame inside a fragmented message')
        if (rsv !== 0 && (rsv !== 4 || !this.allowRsv1)) throw protocolError(ErrorCode.ReservedBits, 'reserved bits set without a negotiated extension')
        this.messageOpcode = opcode
        this.compressed = rsv === 4
        this.utf8 = UTF8_ACCEPT
        this.messageLength = 0
        this.fragments = 0
      }
      // limits, from the header, before any payload is buffered
      if (length > this.maxPayload - this.messageLength) {
        throw new ProtocolError(ErrorCode.MessageTooBig, CloseCode.MessageTooBig, `message exceeds maxPayload (${this.maxPayload} bytes)`)
      }
      if (++this.fragments > this.maxFragments) {
        throw new ProtocolError(ErrorCode.TooManyFragments, CloseCode.MessageTooBig, `message exceeds ${this.maxFragments} fragments`)
      }
    }
    this.fin = fin
    this.opcode = opcode
    this.masked = masked
    this.keyIndex = 0
    this.remaining = length
    this.frameLength = length
  }

  /** A frame whose payload arrived whole (or is empty). */
  private wholeFrame (payload: Buffer): void {
    if (this.opcode >= 0x8) {
      this.endFrame(payload)
      return
    }
    if (this.fin && this.fragments === 1) {
      // a complete single-frame message: no copy
      if (this.messageOpcode === Opcode.Text && !this.compressed) {
        if (validateUtf8(payload, 0, payload.length, UTF8_ACCEPT) !== UTF8_ACCEPT) {
          throw new ProtocolError(ErrorCode.InvalidUtf8, CloseCode.InvalidFramePayloadData, 'text message is not valid UTF-8')
        }
      }
      this.deliver(payload)
      return
    }
    this.appendData(payload)
    if (!this.isStopped()) this.endDataFrame()
  }

  private endFrame (payload: Buffer): void {
    if (this.opcode >= 0x8) {
      this.state = HEADER
      this.sink.onControl(this.opcode, payload)
      return
    }
    this.endDataFrame()
  }

  private appendControl (piece: Buffer): void {
    if (this.control === null) this.control = Buffer.allocUnsafe(this.frameLength)
    this.control.set(piece, this.controlLength)
    this.controlLength += piece.length
  }

  private appendData (piece: Buffer): void {
    if (this.messageOpcode === Opcode.Text && !this.compressed) {
      this.utf8 = validateUtf8(piece, 0, piece.length, this.utf8)
      if (this.utf8 === UTF8_REJECT) {
        this.fail(new ProtocolError(ErrorCode.InvalidUtf8, CloseCode.InvalidFramePayloadData, 'text message is not valid UTF-8'))
        return
      }
    }
    if (this.keepAsPiece(piece.length, this.remaining)) {
      if (this.pieces === null) this.pieces = [piece]
      else this.pieces.push(piece)
      this.messageLength += piece.length
      return
    }
    this.accFor(piece.length).set(piece, this.messageLength)
    this.messageLength += piece.length
  }

  /** A data piece of a lent chunk, copied (and unmasked) into the accumulator. */
  private appendBorrowed (chunk: Buffer, offset: number, n: number): void {
    const acc = this.accFor(n, chunk.length >= STREAMING_READ && offset + n === chunk.length)
    const start = this.messageLength
    if (this.masked) this.keyIndex = unmaskCopy(chunk, offset, n, acc, start, this.maskKey, this.keyIndex)
    else chunk.copy(acc, start, offset, offset + n)
    if (this.messageOpcode === Opcode.Text && !this.compressed) {
      this.utf8 = validateUtf8(acc, start, start + n, this.utf8)
      if (this.utf8 === UTF8_REJECT) {
        this.fail(new ProtocolError(ErrorCode.InvalidUtf8, CloseCode.InvalidFramePayloadData, 'text message is not valid UTF-8'))
        return
      }
    }
    this.messageLength += n
  }

  /**
   * The accumulator, with room for `extra` more bytes after the message so far (`remaining` is
   * what the current frame still announces after them).
   */
  private accFor (extra: number, streaming = false): Buffer {
    const needed = this.messageLength + extra
    const pieces = this.pieces
    if (pieces !== null) {
      // a small middle piece: move what is held into the accumulator
      const acc = Buffer.allocUnsafe(this.accCapacity(needed, streaming))
      this.joinPieces(pieces, acc)
      this.acc = acc
      this.pieces = null
    }
    let acc = this.acc
    if (acc === null && this.memory !== null) {
      // the whole frame at once, for a message whose size is known: lent memory
      const capacity = this.accCapacity(needed, streaming)
      if (capacity === needed + this.remaining) this.acc = acc = this.messageBuffer(capacity)
    }
    if (acc === null || acc.length < needed) {
      const next = Buffer.allocUnsafe(this.accCapacity(needed, streaming))
      if (acc !== null) acc.copy(next, 0, 0, this.messageLength)
      this.acc = acc = next
    }
    return acc
  }

  /**
   * The accumulator's size for `needed` bytes: never far ahead of what arrived. A peer that
   * announces a large frame and trickles its bytes must not make us hold the announced size (up
   * to maxPayload) for a few bytes sent: the capacity is at most 4x what arrived (1 KiB at
   * least), up to what the last frame announced (or maxPayload while more fragments may come).
   * Growing 4x at a time keeps the copying linear (many small fragments must not reallocate
   * once each, which made a 1 MiB message in 64-byte fragments cost O(n^2) copying).
   * `streaming`: the piece filled a large read to its end, so the peer is sending as fast as we
   * read: the frame gets all it announced at once (one allocation per large message; a peer
   * must send STREAMING_READ bytes in one burst for it, so at most maxPayload / 128 KiB times
   * what arrived).
   */
  private accCapacity (needed: number, streaming: boolean): number {
    const limit = this.fin ? needed + this.remaining : this.maxPayload
    if (streaming && this.fin) return limit
    return Math.min(limit, Math.max(needed * 4, 1024))
  }

  /**
   * Whether a piece of a data frame is kept as a view of its read: only for a single-frame
   * message split across reads, and middle pieces under MIN_PIECE bytes (a peer trickling bytes)
   * go to the accumulator instead: never many tiny views, each pinning its read.
   */
  private keepAsPiece (length: number, remainingAfter: number): boolean {
    if (this.borrowed || this.acc !== null || !this.fin || this.fragments !== 1) return false
    const pieces = this.pieces
    return pieces === null || ((length >= MIN_PIECE || remainingAfter === 0) && pieces.length < MAX_PIECES)
  }

  /**
   * The buffer of a whole message of `size` bytes: from the lent memory for an uncompressed
   * single-frame binary message (data frame, FIN, first fragment), else allocated.
   */
  private messageBuffer (size: number): Buffer {
    if (this.memory !== null && this.opcode === Opcode.Binary && this.fin && !this.compressed) {
      const lent = this.memory.take(size)
      if (lent !== undefined) return lent
    }
    return Buffer.allocUnsafe(size)
  }

  /** Forget the accumulator of a message that will not be delivered (lent memory goes back). */
  private dropAcc (): void {
    if (this.acc !== null && this.memory !== null) this.memory.drop(this.acc)
    this.acc = null
  }

  /** Copy the pieces to the start of `target`, unmasking them on the way if they are masked. */
  private joinPieces (pieces: Buffer[], target: Buffer): void {
    let o = 0
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]
      // a single frame from its first byte: the key index of message offset o is o & 3
      if (this.piecesMasked) unmaskCopy(p, 0, p.length, target, o, this.maskKey, o & 3)
      else target.set(p, o)
      o += p.length
    }
    this.piecesMasked = false
  }

  private endDataFrame (): void {
    this.state = HEADER
    if (!this.fin) return
    if (this.messageOpcode === Opcode.Text && !this.compressed && this.utf8 !== UTF8_ACCEPT) {
      // §8.1: the message ended inside a multi-byte sequence
      this.fail(new ProtocolError(ErrorCode.InvalidUtf8, CloseCode.InvalidFramePayloadData, 'text message is not valid UTF-8'))
      return
    }
    let data: Buffer
    const pieces = this.pieces
    if (pieces !== null) {
      if (pieces.length === 1) {
        // one piece: the payload lies whole in one read, a view of it needs no copy
        data = pieces[0]
        if (this.piecesMasked) unmaskWithKey(data, 0, data.length, this.maskKey, 0)
        this.piecesMasked = false
      } else {
        data = this.messageBuffer(this.messageLength)
        this.joinPieces(pieces, data)
      }
      this.pieces = null
    } else {
      data = this.acc === null ? EMPTY : this.acc.subarray(0, this.messageLength)
    }
    this.acc = null
    this.deliver(data)
  }

  private deliver (data: Buffer): void {
    const binary = this.messageOpcode === Opcode.Binary
    const compressed = this.compressed
    this.endMessage()
    this.state = HEADER
    this.sink.onMessage(data, binary, compressed)
  }
}
