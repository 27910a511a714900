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
 * - Memory: nothing until the first compressed message; then with context takeover an inflater
 *   (2^windowBits window + ~7 KiB) and a deflater (2^(windowBits+2) + 2^(memLevel+9) bytes),
 *   each with a 16 KiB output buffer, stay for the connection's life. Without context takeover
 *   (server_no_context_takeover / client_no_context_takeover) that side's stream is released
 *   after each message, so an idle connection holds no zlib state.
 */
import zlib from 'node:zlib'
import {
  checkNegotiationOptions, type DeflateNegotiationOptions, DeflateCloseCode, DeflateErrorCode,
  type DeflateParams, MAX_WINDOW_BITS
} from '../protocol/permessage-deflate.js'
import { ProtocolError } from '../protocol/errors.js'

/** Options of the plugin / route (`perMessageDeflate: true | {...}`). */
export interface PerMessageDeflateOptions extends DeflateNegotiationOptions {
  /** messages smaller than this many bytes are sent uncompressed; default 1024 */
  threshold?: number
  /** zlib compression level, -1 (default, 6) or 0..9 */
  level?: number
  /** zlib memLevel 1..9 (deflate memory is 2^(memLevel+9) + 2^(windowBits+2) bytes); default 8 */
  memLevel?: number
}

export interface ResolvedDeflateOptions extends Required<DeflateNegotiationOptions> {
  threshold: number
  level: number
  memLevel: number
}

/** Default when the plugin is given `perMessageDeflate: true`. */
export const DEFLATE_DEFAULTS: ResolvedDeflateOptions = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: MAX_WINDOW_BITS,
  clientMaxWindowBits: MAX_WINDOW_BITS,
  threshold: 1024,
  level: zlib.constants.Z_DEFAULT_COMPRESSION,
  memLevel: 8
}

function intIn (name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`fastify-rfc6455: perMessageDeflate.${name} must be an integer from ${min} to ${max}`)
  }
  return value
}

/**
 * Resolve `perMessageDeflate` (false/undefined = off, true = defaults, object = overrides of
 * `base`). A route's object is merged over the plugin's settings.
 */
export function resolveDeflateOptions (value: boolean | PerMessageDeflateOptions | undefined, base: ResolvedDeflateOptions | null): ResolvedDeflateOptions | null {
  if (value === undefined) return base
  if (value === false) return null
  if (value === true) return base ?? DEFLATE_DEFAULTS
  if (value === null || typeof value !== 'object') {
    throw new TypeError('fastify-rfc6455: option perMessageDeflate must be a boolean or an object')
  }
  const from = base ?? DEFLATE_DEFAULTS
  const negotiation = checkNegotiationOptions({
    serverNoContextTakeover: value.serverNoContextTakeover ?? from.serverNoContextTakeover,
    clientNoContextTakeover: value.clientNoContextTakeover ?? from.clientNoContextTakeover,
    serverMaxWindowBits: value.serverMaxWindowBits ?? from.serverMaxWindowBits,
    clientMaxWindowBits: value.clientMaxWindowBits ?? from.clientMaxWindowBits
  })
  return {
    ...negotiation,
    threshold: intIn('threshold', value.threshold, 0, Number.MAX_SAFE_INTEGER, from.threshold),
    level: intIn('level', value.level, -1, 9, from.level),
    memLevel: intIn('memLevel', value.memLevel, 1, 9, from.memLevel)
  }
}

// ---- process-wide zlib concurrency ----

let zlibConcurrency = 10
let running = 0
const waiting: Array<() => void> = []

/** At most `n` zlib jobs (inflate or deflate of one message) run at once in this process. */
export function setZlibConcurrency (n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError('zlib concurrency must be a positive integer')
  zlibConcurrency = n
  while (running < zlibConcurrency && waiting.length > 0) { running++; (waiting.shift() as () => void)() }
}

function acquire (start: () => void): void {
  if (running < zlibConcurrency) {
    running++
    start()
  } else {
    waiting.push(start)
  }
}

function release (): void {
  const next = waiting.shift()
  if (next !== undefined) next() // the slot passes straight on
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

// ---- one connection ----

/** RFC 7692 §7.2.1: the sync-flush marker a sender removes and §7.2.2 a receiver appends. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])
const EMPTY: Buffer = Buffer.alloc(0)

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

class Direction {
  readonly jobs: Job[] = []
  busy = false
  /** finishes the job in flight (idempotent); set while one runs */
  abort: ((error: Error) => void) | null = null
}

export class PerMessageDeflate {
  readonly params: DeflateParams
  private readonly maxPayload: number
  private readonly level: number
  private readonly memLevel: number
  private inflater: zlib.InflateRaw | null = null
  private deflater: zlib.DeflateRaw | null = null
  private readonly inbound = new Direction()
  private readonly outbound = new Direction()
  private closed = false
  /** bytes zlib produced for the last inbound message, counted up to the stop (for tests) */
  lastInflateOutput = 0

  constructor (config: PerMessageDeflateConfig) {
    this.params = config.params
    this.maxPayload = config.maxPayload
    this.level = config.level ?? zlib.constants.Z_DEFAULT_COMPRESSION
    this.memLevel = config.memLevel ?? 8
  }

  /** Jobs queued or running, both directions. */
  get pending (): number {
    return this.inbound.jobs.length + this.outbound.jobs.length + (this.inbound.busy ? 1 : 0) + (this.outbound.busy ? 1 : 0)
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
      if (dir.abort !== null) dir.abort(closedError())
      const jobs = dir.jobs.splice(0)
      for (const job of jobs) job.cb(closedError(), EMPTY)
    }
    this.dropInflater()
    this.dropDeflater()
  }

  private enqueue (dir: Direction, job: Job): void {
    if (this.closed) {
      queueMicrotask(() => job.cb(closedError(), EMPTY))
      return
    }
    dir.jobs.push(job)
    if (!dir.busy) this.next(dir)
  }

  private next (dir: Direction): void {
    const job = dir.jobs.shift()
    if (job === undefined || this.closed) return
    dir.busy = true
    acquire(() => {
      if (this.closed) {
        release()
        dir.busy = false
        job.cb(closedError(), EMPTY)
        return
      }
      if (dir === this.inbound) this.runInflate(job)
      else this.runDeflate(job)
    })
  }

  private finishJob (dir: Direction): void {
    dir.busy = false
    dir.abort = null
    release()
  }

  private createInflater (): zlib.InflateRaw {
    // a client that negotiated 8 bits may still compress with 9 (zlib's raw minimum): a larger
    // inflate window reads any smaller one
    const inflater = zlib.createInflateRaw({ windowBits: Math.max(9, this.params.clientMaxWindowBits) })
    liveStreams++
    inflater.once('close', () => { liveStreams-- })
    return inflater
  }

  private createDeflater (): zlib.DeflateRaw {
    const deflater = zlib.createDeflateRaw({
      windowBits: this.params.serverMaxWindowBits,
      level: this.level,
      memLevel: this.memLevel
    })
    liveStreams++
    deflater.once('close', () => { liveStreams-- })
    return deflater
  }

  private dropInflater (): void {
    const inflater = this.inflater
    this.inflater = null
    if (inflater !== null) {
      inflater.removeAllListeners('data')
      inflater.on('error', noop)
      inflater.close()
    }
  }

  private dropDeflater (): void {
    const deflater = this.deflater
    this.deflater = null
    if (deflater !== null) {
      deflater.removeAllListeners('data')
      deflater.on('error', noop)
      deflater.close()
    }
  }

  private runInflate (job: Job): void {
    const dir = this.inbound
    const inflater = this.inflater ??= this.createInflater()
    const chunks: Buffer[] = []
    let total = 0
    let done = false
    const finish = (error: Error | null): void => {
      if (done) return
      done = true
      inflater.removeListener('data', onData)
      inflater.removeListener('error', onError)
      inflater.removeListener('end', onEnd)
      this.finishJob(dir)
      let out: Buffer = EMPTY
      if (error === null) {
        out = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total)
        // RFC 7692 §7.1.1.2: with client_no_context_takeover the client starts each message
        // with an empty window, so nothing needs keeping: the inflater is released while idle
        // (reset instead when the next message already waits)
        if (this.params.clientNoContextTakeover && this.inflater === inflater) {
          if (dir.jobs.length === 0) this.dropInflater()
          else inflater.reset()
        }
      } else if (this.inflater === inflater) {
        this.dropInflater()
      }
      chunks.length = 0
      job.cb(error, out)
      if (!this.closed) this.next(dir)
    }
    this.lastInflateOutput = 0
    const onData = (chunk: Buffer): void => {
      this.lastInflateOutput += chunk.length
      if (done) return
      total += chunk.length
      if (total > this.maxPayload) {
        // the zip bomb stops here: the inflater is closed before it produces another chunk
        chunks.length = 0
        finish(new ProtocolError(DeflateErrorCode.MessageTooBig, DeflateCloseCode[DeflateErrorCode.MessageTooBig],
          `inflated message exceeds maxPayload (${this.maxPayload} bytes)`))
        return
      }
      chunks.push(chunk)
    }
    const onError = (err: Error): void => {
      finish(new ProtocolError(DeflateErrorCode.InvalidCompressedData, DeflateCloseCode[DeflateErrorCode.InvalidCompressedData],
        `invalid compressed data: ${err.message}`))
    }
    // a message ending in a DEFLATE block with BFINAL set ends the zlib stream: the next message
    // starts a new one (RFC 7692 §7.2.3.4 allows such blocks)
    const onEnd = (): void => {
      if (this.inflater === inflater) this.inflater = null
      finish(null)
      inflater.on('error', noop)
      inflater.close()
    }
    dir.abort = finish
    inflater.on('data', onData)
    inflater.once('error', onError)
    inflater.once('end', onEnd)
    // RFC 7692 §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload
    // of the message. Decompress the resulting data using DEFLATE."
    inflater.write(job.data)
    inflater.write(TRAILER)
    inflater.flush(() => finish(null))
  }

  private runDeflate (job: Job): void {
    const dir = this.outbound
    const deflater = this.deflater ??= this.createDeflater()
    const chunks: Buffer[] = []
    let total = 0
    let done = false
    const finish = (error: Error | null): void => {
      if (done) return
      done = true
      deflater.removeListener('data', onData)
      deflater.removeListener('error', onError)
      this.finishJob(dir)
      let out: Buffer = EMPTY
      if (error === null) {
        out = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total)
        // RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
        if (out.length >= 4 && out[out.length - 4] === 0 && out[out.length - 3] === 0 && out[out.length - 2] === 0xff && out[out.length - 1] === 0xff) {
          out = out.subarray(0, out.length - 4)
        }
        // §7.1.1.1: with server_no_context_takeover, the server "MUST start compressing each new
        // message with an empty LZ77 sliding window": a fresh deflater per message, released
        // while idle (reset instead when the next message already waits)
        if (this.params.serverNoContextTakeover && this.deflater === deflater) {
          if (dir.jobs.length === 0) this.dropDeflater()
          else deflater.reset()
        }
      } else if (this.deflater === deflater) {
        this.dropDeflater()
      }
      chunks.length = 0
      job.cb(error, out)
      if (!this.closed) this.next(dir)
    }
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      total += chunk.length
    }
    const onError = (err: Error): void => finish(err)
    dir.abort = finish
    deflater.on('data', onData)
    deflater.once('error', onError)
    deflater.write(job.data)
    // §7.2.1: compress "using DEFLATE" and flush to a byte boundary (an empty stored block)
    deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => finish(null))
  }
}

function noop (): void {}
