/**
 * Reading sockets into one shared buffer (issue 6).
 *
 * By default a net.Socket gets a new ArrayBuffer for every read (up to 64 KiB). V8 counts those
 * bytes as external memory, and in an app whose heap is over 8 MB (any Fastify app) that memory
 * starts mark-compact collections: at 64 KiB messages, reads alone were half of what the GC was
 * started for. Node has a mode without that allocation, the `onread` option of net.connect()
 * (one caller-supplied buffer that every read fills). A socket accepted by the HTTP server cannot
 * be given that option, so this module switches it the way `onread` sets a socket up: the
 * socket's kBuffer / kBufferCb / kBufferGen fields (found by their symbol descriptions) and
 * `handle.useUserBuffer()`. Node's own Socket.pause() and resume() then stop and start reading,
 * and 'end', 'close' and errors are unchanged.
 *
 * Every socket read lands in the same buffer: reads run one at a time and their callback parses
 * the bytes before the next read, and the core keeps nothing of a lent chunk (messages and
 * control payloads are copied out, unmasked on the way: see FrameParser.push). 256 KiB also
 * means 4x fewer read calls than Node's 64 KiB for large messages. The buffer is the read arena
 * of the WebAssembly unmasking module where there is one (mask.ts): payloads are unmasked where
 * they were read and copied out once.
 *
 * Used only where every piece is there (a TCP or Pipe handle with useUserBuffer, the three
 * symbols, no onread already, nothing buffered yet); any other stream keeps 'data' events.
 * `WebSocketOptions.sharedReadBuffer: false` (plugin option too) turns it off.
 */
import type { Duplex } from 'node:stream'
import { ARENA_SIZE, readArena } from '../protocol/mask.js'

export const SHARED_READ_SIZE = ARENA_SIZE

let sharedBuffer: Buffer | null = null

interface ReadSymbols { buffer: symbol, callback: symbol, generator: symbol }
/** undefined: not looked up yet; null: this Node has no such fields */
let readSymbols: ReadSymbols | null | undefined

type Handle = { useUserBuffer?: (buffer: Uint8Array) => void, constructor?: { name?: string } }
type LendableSocket = Duplex & { _handle?: Handle | null } & Record<symbol, unknown>

function findSymbols (socket: LendableSocket): ReadSymbols | null {
  let buffer: symbol | undefined
  let callback: symbol | undefined
  let generator: symbol | undefined
  for (const s of Object.getOwnPropertySymbols(socket)) {
    if (s.description === 'kBuffer') buffer = s
    else if (s.description === 'kBufferCb') callback = s
    else if (s.description === 'kBufferGen') generator = s
  }
  return buffer !== undefined && callback !== undefined && generator !== undefined ? { buffer, callback, generator } : null
}

/**
 * Switch `socket` to reading into the shared buffer; `onRead` is then called with `this` set to
 * the socket, the byte count and the shared buffer, in place of 'data' events. Returns false (and
 * changes nothing) when the socket cannot be switched.
 */
export function lendReads (socket: Duplex, onRead: (this: Duplex, nread: number, buffer: Buffer) => void): boolean {
  const s = socket as LendableSocket
  const handle = s._handle
  if (handle === undefined || handle === null || typeof handle.useUserBuffer !== 'function') return false
  const kind = handle.constructor?.name
  if (kind !== 'TCP' && kind !== 'Pipe') return false
  if (readSymbols === undefined) readSymbols = findSymbols(s)
  const symbols = readSymbols
  if (symbols === null || !(symbols.buffer in s) || s[symbols.buffer] !== null) return false
  if (s.readableLength > 0 || s.destroyed) return false
  sharedBuffer ??= readArena() ?? Buffer.allocUnsafeSlow(SHARED_READ_SIZE)
  s[symbols.buffer] = sharedBuffer
  s[symbols.callback] = onRead
  s[symbols.generator] = null
  handle.useUserBuffer(sharedBuffer)
  return true
}
