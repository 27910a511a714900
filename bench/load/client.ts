/**
 * The load generator: raw net sockets, its own handshake, frames built and masked once, a window
 * of messages in flight per connection, echoes counted from frame headers only (payload bytes
 * are skipped, never read or copied). Every socket reads into one 256 KiB buffer through Node's
 * `onread` option (no buffer allocated per read, 4x fewer reads than 64 KiB ones), so that at
 * 64 KiB and 1 MiB the generator is not the limit.
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'

const KEY = randomBytes(16).toString('base64')

/** the one buffer every socket of the generator reads into: handlers copy what they keep */
const READ_BUFFER = Buffer.allocUnsafeSlow(256 * 1024)
type OnBytes = (chunk: Buffer) => void
const handlers = new WeakMap<net.Socket, OnBytes>()
function onRead (this: net.Socket, nread: number): boolean {
  const handler = handlers.get(this)
  if (handler !== undefined) handler(READ_BUFFER.subarray(0, nread))
  return true // keep reading
}

/** Where the bytes a socket reads go from now on (the chunk is only valid during the call). */
export function onBytes (socket: net.Socket, handler: OnBytes): void {
  handlers.set(socket, handler)
}

function upgradeRequest (port: number, path: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`, 'latin1')
}

/** `count` copies of one masked client frame, back to back (built and masked once). */
export function buildFrames (size: number, binary: boolean, count: number): { block: Buffer, frameSize: number } {
  const header = size < 126 ? 2 : size < 65536 ? 4 : 10
  const frameSize = header + 4 + size
  const frame = Buffer.allocUnsafe(frameSize)
  frame[0] = 0x80 | (binary ? 0x2 : 0x1)
  if (size < 126) frame[1] = 0x80 | size
  else if (size < 65536) { frame[1] = 0x80 | 126; frame.writeUInt16BE(size, 2) }
  else { frame[1] = 0x80 | 127; frame.writeUInt32BE(0, 2); frame.writeUInt32BE(size, 6) }
  const mask = randomBytes(4)
  mask.copy(frame, header)
  const payload = frame.subarray(header + 4)
  // text payload: printable ASCII, valid UTF-8
  for (let i = 0; i < size; i++) payload[i] = (binary ? (i * 31 + 7) & 0xff : 0x61 + (i % 26)) ^ mask[i & 3]
  const block = Buffer.allocUnsafe(frameSize * count)
  for (let i = 0; i < count; i++) frame.copy(block, i * frameSize)
  return { block, frameSize }
}

/** Counts complete data frames in a stream of unmasked server frames, reading headers only. */
export class FrameCounter {
  /** payload bytes of the current frame still to skip */
  private skip = 0
  private inFrame = false
  private partial: Buffer | null = null
  frames = 0
  closed = false

  /** Returns the number of frames completed by this chunk. */
  push (chunk: Buffer): number {
    let done = 0
    if (this.partial !== null) {
      chunk = Buffer.concat([this.partial, chunk])
      this.partial = null
    }
    const end = chunk.length
    let offset = 0
    if (this.inFrame) {
      const n = this.skip < end ? this.skip : end
      this.skip -= n
      offset = n
      if (this.skip > 0) return 0
      this.inFrame = false
      done++
    }
    while (offset < end) {
      if (end - offset < 2) break
      const b0 = chunk[offset]
      const b1 = chunk[offset + 1]
      let len = b1 & 0x7f
      let size = 2
      if (len === 126) size = 4
      else if (len === 127) size = 10
      if (b1 & 0x80) size += 4
      if (end - offset < size) break
      if (len === 126) len = (chunk[offset + 2] << 8) | chunk[offset + 3]
      else if (len === 127) len = chunk.readUInt32BE(offset + 2) * 0x100000000 + chunk.readUInt32BE(offset + 6)
      if ((b0 & 0x0f) === 0x8) this.closed = true
      offset += size
      if (end - offset >= len) {
        offset += len
        done++
      } else {
        this.skip = len - (end - offset)
        this.inFrame = true
        offset = end
      }
    }
    if (offset < end) this.partial = Buffer.from(chunk.subarray(offset))
    this.frames += done
    return done
  }
}

/** Open a TCP connection and complete the WebSocket handshake; resolves with leftover bytes. */
export function connect (port: number, path = '/'): Promise<{ socket: net.Socket, rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true, onread: { buffer: READ_BUFFER, callback: onRead } })
    let buffered: Buffer | null = null
    const onError = (err: Error): void => { socket.destroy(); reject(err) }
    onBytes(socket, (chunk: Buffer): void => {
      buffered = buffered === null ? Buffer.from(chunk) : Buffer.concat([buffered, chunk])
      const end = buffered.indexOf('\r\n\r\n')
      if (end < 0) return
      handlers.delete(socket) // until the caller sets its own: later bytes are dropped
      socket.removeListener('error', onError)
      if (buffered.toString('latin1', 9, 12) !== '101') {
        socket.destroy()
        reject(new Error(`handshake refused: ${buffered.toString('latin1', 0, end)}`))
        return
      }
      resolve({ socket, rest: buffered.subarray(end + 4) })
    })
    socket.on('error', onError)
    socket.write(upgradeRequest(port, path))
  })
}

export async function connectMany (port: number, count: number, concurrency: number, path = '/'): Promise<net.Socket[]> {
  const sockets: net.Socket[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++
      const { socket } = await connect(port, path)
      socket.on('error', () => {})
      sockets.push(socket)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return sockets
}

export function closeAll (sockets: net.Socket[]): void {
  // a reset leaves no TIME_WAIT behind, so thousands of runs do not exhaust local ports
  for (const socket of sockets) socket.resetAndDestroy()
}

export interface EchoLoad {
  /** data frames echoed so far, all connections */
  readonly echoed: () => number
  stop: () => void
}

/**
 * Start echo traffic on open sockets: each keeps up to `window` messages in flight and tops the
 * window up once half of it has come back (one write per refill, so the generator's own write
 * calls stay few whatever the server's write pattern).
 */
export function startEcho (sockets: net.Socket[], size: number, binary: boolean, window: number): EchoLoad {
  const { block, frameSize } = buildFrames(size, binary, window)
  const low = window >> 1
  let total = 0
  let running = true
  for (const socket of sockets) {
    const counter = new FrameCounter()
    let inFlight = window
    onBytes(socket, (chunk: Buffer) => {
      const n = counter.push(chunk)
      if (n === 0) return
      total += n
      inFlight -= n
      if (running && inFlight <= low) {
        socket.write(block.subarray(0, (window - inFlight) * frameSize))
        inFlight = window
      }
    })
    socket.write(block)
  }
  return {
    echoed: () => total,
    stop: () => { running = false }
  }
}

/**
 * Round trips on one socket with one message in flight: send a message, wait for its whole echo,
 * note the time it took, send the next, until stop(). The latency of a request-reply exchange
 * (no pipelining, so every batching delay of the server shows).
 */
export function startRoundTrips (socket: net.Socket, size: number, binary: boolean): { samples: number[], stop: () => void } {
  const { block } = buildFrames(size, binary, 1)
  const counter = new FrameCounter()
  const samples: number[] = []
  let running = true
  let sentAt = process.hrtime.bigint()
  onBytes(socket, (chunk: Buffer) => {
    if (counter.push(chunk) === 0) return
    samples.push(Number(process.hrtime.bigint() - sentAt) / 1000)
    if (!running) return
    sentAt = process.hrtime.bigint()
    socket.write(block)
  })
  socket.write(block)
  return { samples, stop: () => { running = false } }
}

/**
 * Handshakes per second: `concurrency` workers each open a connection, wait for the 101, end it
 * and start over until `durationMs` has passed.
 */
export async function handshakeLoop (port: number, concurrency: number, durationMs: number): Promise<{ count: number, seconds: number }> {
  const start = process.hrtime.bigint()
  const deadline = start + BigInt(durationMs) * 1_000_000n
  let count = 0
  const worker = async (): Promise<void> => {
    while (process.hrtime.bigint() < deadline) {
      const { socket } = await connect(port)
      count++
      socket.on('error', () => {})
      // a FIN, as a client that goes away (a reset would cost every server an error object)
      socket.end()
      socket.resume()
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { count, seconds: Number(process.hrtime.bigint() - start) / 1e9 }
}

/** Deliveries counted on `sockets` (binary or text data frames). */
export function countDeliveries (sockets: net.Socket[]): () => number {
  let total = 0
  for (const socket of sockets) {
    const counter = new FrameCounter()
    onBytes(socket, (chunk: Buffer) => { total += counter.push(chunk) })
  }
  return () => total
}
