/**
 * permessage-deflate (RFC 7692 §7.2) for one connection: a raw-DEFLATE inflater and deflater,
 * each created on first use and kept (context takeover) or reset after every message.
 *
 * - Order: each direction runs one job at a time, callbacks fire in the order of the calls.
 * - A process-wide limit on zlib jobs running at once (`zlibConcurrency`), so thousands of
 *   connections compressing together queue up instead of all holding zlib work buffers.
 * - Inflation is bounded by maxPayload: output is counted as zlib produces it, and the first
 *   chunk that crosses the limit closes the inflater, so at most maxPayload bytes are kept (plus
 *   the one zlib output chunk in flight) whatever the compressed input claims (zip bomb).
 * - close() releases both zlib handles at once, whatever is in flight.
 * - CPU: one zlib call (one libuv thread-pool round trip) per message and direction when the
 *   output fits the stream's output buffer; listeners are attached once per zlib stream, so a
 *   message allocates no closures here (see Direction).
 * - Memory: nothing until the first compressed message; then with context takeover an inflater
 *   (2^windowBits window + ~7 KiB) and a deflater (2^(windowBits+2) + 2^(memLevel+9) bytes),
 *   each with a 16 KiB output buffer, stay for the connection's life. Without context takeover
 *   (server_no_context_takeover / client_no_context_takeover) that side's stream is released
 *   after each message, so an idle connection holds no zlib state.
 */
import zlib from 'node:zlib'
import { DeflateCloseCode, DeflateErrorCode, type DeflateParams } from '../protocol/permessage-deflate.js'
import { argumentError, ProtocolError } from '../protocol/errors.js'

export { DEFLATE_DEFAULTS, type PerMessageDeflateOptions, resolveDeflateOptions, type ResolvedDeflateOptions } from './deflate-options.js'

// ---- process-wide zlib concurrency ----

let zlibConcurrency = 10
let running = 0
/** directions waiting for a slot, in order */
const waiting: Direction[] = []

/** At most `n` zlib jobs (inflate or deflate of one message) run at once in this process. */
export function setZlibConcurrency (n: number): void {
  if (!Number.isInteger(n) || n < 1) throw argumentError('range', 'FST_ERR_WS_INVALID_OPTION', 'fastify-rfc6455: zlib concurrency must be a positive integer')
  zlibConcurrency = n
  while (running < zlibConcurrency && waiting.length > 0) { running++; (waiting.shift() as Direction).start() }
}

function release (): void {
  const next = waiting.shift()
  if (next !== undefined) next.start() // the slot passes straight on
  else running--
}

let liveStreams = 0
/** zlib streams currently open in this process (for leak tests). */
export function liveZlibStreams (): number {
  return liveStreams
}
/** zlib jobs running / waiting for a slot (for tests). */
export function zlibJobs (): { running: number, waiting: number } {
  return { running, waiting: waiting.length }
}

function onStreamClose (): void {
  liveStreams--
}

// ---- one connection ----

/** RFC 7692 §7.2.1: the sync-flush marker a sender removes and §7.2.2 a receiver appends. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])
const EMPTY: Buffer = Buffer.alloc(0)
/** RFC 7692 §7.2.3.6: an empty stored block, BFINAL 0, once its 4 tail octets are removed (read only) */
const EMPTY_STORED_BLOCK: Buffer = Buffer.from([0x00])
/**
 * Compressed payloads up to this size are copied once with the trailer appended, so inflating
 * a message is one zlib call (one thread-pool round trip) instead of two; larger ones are
 * written as they are, then the trailer.
 */
const COPY_WITH_TRAILER = 64 * 1024

export type DeflateCallback = (error: Error | null, data: Buffer) => void

interface Job {
  data: Buffer
  cb: DeflateCallback
}

export interface PerMessageDeflateConfig {
  params: DeflateParams
  maxPayload: number
  level?: number
  memLevel?: number
}

function closedError (): Error {
  return new Error('permessage-deflate context closed')
}

function invalidData (err: Error): ProtocolError {
  return new ProtocolError(DeflateErrorCode.InvalidCompressedData, DeflateCloseCode[DeflateErrorCode.InvalidCompressedData],
    `invalid compressed data: ${err.message}`)
}

/**
 * One direction of one connection: its queue, its zlib stream and the job in flight.
 *
 * Cost per message (what made this slower than `ws` before): each zlib call is a round trip
 * through libuv's thread pool (queue the work, wake a worker thread, wake the event loop
 * when done), which costs more CPU than compressing a small message. Writing the payload, then
 * the trailer, then a flush was three round trips to inflate and two to deflate. Here the
 * stream is created with `flush: Z_SYNC_FLUSH`, so one write (with the trailer appended on
 * the way in) inflates or deflates a whole message in one round trip. The stream's listeners
 * are attached once when it is created, not per message.
 */
class Direction {
  readonly jobs: Job[] = []
  /** the job in flight (holds a concurrency slot) */
  current: Job | null = null
  /** waiting in `waiting` for a slot */
  queued = false
  stream: zlib.InflateRaw | zlib.DeflateRaw | null = null
  /** the stream's write callback (made once per stream, not per message) */
  afterWrite: (err?: Error | null) => void = noop
  chunks: Buffer[] = []
  total = 0
  /** stream.bytesWritten when the job started, and the bytes written for it */
  before = 0
  written = 0

  constructor (readonly owner: PerMessageDeflate, readonly inbound: boolean) {}

  /** Ask for a slot for the next job unless one runs or waits. */
  schedule (): void {
    if (this.current !== null || this.queued || this.jobs.length === 0 || this.owner.closed) return
    if (running < zlibConcurrency) {
      running++
      this.start()
    } else {
      this.queued = true
      waiting.push(this)
    }
  }

  /** Called with a slot: run the next job, or hand the slot on. */
  start (): void {
    this.queued = false
    const job = this.jobs.shift()
    if (job === undefined || this.owner.closed) {
      release()
      if (job !== undefined) job.cb(closedError(), EMPTY)
      return
    }
    this.current = job
    this.chunks = []
    this.total = 0
    if (this.inbound) this.owner.runInflate(this, job)
    else this.owner.runDeflate(this, job)
  }

  /** Finish the job in flight (idempotent); `out` is the result when error is null. */
  finish (error: Error | null, out: Buffer): void {
    const job = this.current
    if (job === null) return
    this.current = null
    this.chunks = []
    release()
    job.cb(error, error === null ? out : EMPTY)
    this.schedule()
  }

  /** Output so far as one buffer. */
  output (): Buffer {
    const chunks = this.chunks
    return chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.total)
  }

  /** Release the stream (listeners off, errors ignored from now on). */
  drop (): void {
    const stream = this.stream
    this.stream = null
    if (stream !== null) {
      stream.removeAllListeners('data')
      stream.on('error', noop)
      stream.close()
    }
  }
}

export class PerMessageDeflate {
  readonly params: DeflateParams
  private readonly maxPayload: number
  private readonly level: number
  private readonly memLevel: number
  private readonly inbound: Direction
  private readonly outbound: Direction
  /** @internal */
  closed = false
  /** bytes zlib produced for the last inbound message, counted up to the stop (for tests) */
  lastInflateOutput = 0

  constructor (config: PerMessageDeflateConfig) {
    this.params = config.params
    this.maxPayload = config.maxPayload
    this.level = config.level ?? zlib.constants.Z_DEFAULT_COMPRESSION
    this.memLevel = config.memLevel ?? 8
    this.inbound = new Direction(this, true)
    this.outbound = new Direction(this, false)
  }

  /** Jobs queued or running, both directions. */
  get pending (): number {
    return this.inbound.jobs.length + this.outbound.jobs.length + (this.inbound.current !== null ? 1 : 0) + (this.outbound.current !== null ? 1 : 0)
  }

  /** Inflate one message payload (RSV1 set). Errors are ProtocolErrors with their close code. */
  decompress (data: Buffer, cb: DeflateCallback): void {
    this.enqueue(this.inbound, { data, cb })
  }

  /** Deflate one message payload; the result goes in a frame with RSV1 set. */
  compress (data: Buffer, cb: DeflateCallback): void {
    this.enqueue(this.outbound, { data, cb })
  }

  /** Release both zlib streams now; queued and running jobs fail with an error. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    for (const dir of [this.inbound, this.outbound]) {
      dir.finish(closedError(), EMPTY)
      const jobs = dir.jobs.splice(0)
      for (const job of jobs) job.cb(closedError(), EMPTY)
      dir.drop()
    }
  }

  private enqueue (dir: Direction, job: Job): void {
    if (this.closed) {
      queueMicrotask(() => job.cb(closedError(), EMPTY))
      return
    }
    dir.jobs.push(job)
    dir.schedule()
  }

  private createInflater (dir: Direction): zlib.InflateRaw {
    // a client that negotiated 8 bits may still compress with 9 (zlib's raw minimum): a larger
    // inflate window reads any smaller one
    const inflater = zlib.createInflateRaw({
      windowBits: Math.max(9, this.params.clientMaxWindowBits),
      flush: zlib.constants.Z_SYNC_FLUSH
    })
    liveStreams++
    inflater.once('close', onStreamClose)
    inflater.on('data', (chunk: Buffer) => {
      if (dir.stream !== inflater || dir.current === null) return
      this.lastInflateOutput += chunk.length
      dir.total += chunk.length
      if (dir.total > this.maxPayload) {
        // the zip bomb stops here: the inflater is closed before it produces another chunk
        dir.chunks = []
        dir.drop()
        dir.finish(new ProtocolError(DeflateErrorCode.MessageTooBig, DeflateCloseCode[DeflateErrorCode.MessageTooBig],
          `inflated message exceeds maxPayload (${this.maxPayload} bytes)`), EMPTY)
        return
      }
      dir.chunks.push(chunk)
    })
    inflater.on('error', (err: Error) => {
      if (dir.stream !== inflater) return
      dir.drop()
      dir.finish(invalidData(err), EMPTY)
    })
    dir.afterWrite = (err) => this.afterInflate(dir, inflater, err)
    return inflater
  }

  private createDeflater (dir: Direction): zlib.DeflateRaw {
    const deflater = zlib.createDeflateRaw({
      windowBits: this.params.serverMaxWindowBits,
      level: this.level,
      memLevel: this.memLevel,
      // §7.2.1: every message ends flushed to a byte boundary (an empty stored block)
      flush: zlib.constants.Z_SYNC_FLUSH
    })
    liveStreams++
    deflater.once('close', onStreamClose)
    deflater.on('data', (chunk: Buffer) => {
      if (dir.stream !== deflater || dir.current === null) return
      dir.chunks.push(chunk)
      dir.total += chunk.length
    })
    deflater.on('error', (err: Error) => {
      if (dir.stream !== deflater) return
      dir.drop()
      dir.finish(err, EMPTY)
    })
    dir.afterWrite = (err) => this.afterDeflate(dir, deflater, err)
    return deflater
  }

  /** @internal */
  runInflate (dir: Direction, job: Job): void {
    this.lastInflateOutput = 0
    if (job.data.length === 0) {
      // RFC 7692 §7.2.1 step 3: after the tail is removed "the last octet of the compressed data
      // contains (possibly part of) the DEFLATE header bits with the "BTYPE" bits set to 00", so
      // a compressed message has at least one octet (§7.2.3.6: an empty one is 0x00). An empty
      // payload plus the tail (§7.2.2) is a truncated stored block that would swallow the next
      // message's bytes: refused without touching the inflater, on a later tick as zlib answers
      queueMicrotask(() => {
        if (dir.current === job) {
          dir.finish(new ProtocolError(DeflateErrorCode.InvalidCompressedData, DeflateCloseCode[DeflateErrorCode.InvalidCompressedData],
            'invalid compressed data: a compressed message with no payload'), EMPTY)
        }
      })
      return
    }
    const inflater = (dir.stream ??= this.createInflater(dir)) as zlib.InflateRaw
    dir.before = inflater.bytesWritten
    // RFC 7692 §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload
    // of the message. Decompress the resulting data using DEFLATE."
    const data = job.data
    if (data.length <= COPY_WITH_TRAILER) {
      const input = Buffer.allocUnsafe(data.length + 4)
      data.copy(input, 0)
      TRAILER.copy(input, data.length)
      dir.written = input.length
      inflater.write(input, dir.afterWrite)
    } else {
      dir.written = data.length + 4
      inflater.write(data)
      inflater.write(TRAILER, dir.afterWrite)
    }
  }

  /** The write was inflated: all its output has been emitted. */
  private afterInflate (dir: Direction, inflater: zlib.InflateRaw, err: Error | null | undefined): void {
    if (dir.stream !== inflater || dir.current === null) return
    if (err != null) {
      dir.drop()
      dir.finish(invalidData(err), EMPTY)
      return
    }
    const out = dir.output()
    if (inflater.bytesWritten - dir.before < dir.written) {
      // a message ending in a DEFLATE block with BFINAL set ends the zlib stream (the input
      // after it, at least the trailer, is left unread): the next message starts a new one
      // (RFC 7692 §7.2.3.4 allows such blocks)
      dir.drop()
    } else if (this.params.clientNoContextTakeover) {
      // RFC 7692 §7.1.1.2: with client_no_context_takeover the client starts each message
      // with an empty window, so nothing needs keeping: the inflater is released while idle
      // (reset instead when the next message already waits)
      if (dir.jobs.length === 0) dir.drop()
      else inflater.reset()
    }
    dir.finish(null, out)
  }

  /** @internal */
  runDeflate (dir: Direction, job: Job): void {
    const deflater = (dir.stream ??= this.createDeflater(dir)) as zlib.DeflateRaw
    // §7.2.1: compress "using DEFLATE"; the stream's flush mode (Z_SYNC_FLUSH) ends the output
    // on a byte boundary with 0x00 0x00 0xff 0xff
    deflater.write(job.data, dir.afterWrite)
  }

  private afterDeflate (dir: Direction, deflater: zlib.DeflateRaw, err: Error | null | undefined): void {
    if (dir.stream !== deflater || dir.current === null) return
    if (err != null) {
      dir.drop()
      dir.finish(err, EMPTY)
      return
    }
    let out = dir.output()
    // RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
    if (out.length >= 4 && out[out.length - 4] === 0 && out[out.length - 3] === 0 && out[out.length - 2] === 0xff && out[out.length - 1] === 0xff) {
      out = out.subarray(0, out.length - 4)
    }
    if (out.length === 0) {
      // an empty message right after a flushed one: zlib has nothing to write, not even the
      // empty block. §7.2.1 step 2: "If the resulting data does not end with an empty DEFLATE
      // block with no compression ..., append an empty DEFLATE block with no compression", which
      // with its 4 tail octets removed is the single octet of §7.2.3.6: "0x00"
      out = EMPTY_STORED_BLOCK
    }
    // §7.1.1.1: with server_no_context_takeover, the server "MUST start compressing each new
    // message with an empty LZ77 sliding window": a fresh deflater per message, released
    // while idle (reset instead when the next message already waits)
    if (this.params.serverNoContextTakeover) {
      if (dir.jobs.length === 0) dir.drop()
      else deflater.reset()
    }
    dir.finish(null, out)
  }
}

function noop (): void {}
