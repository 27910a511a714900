/**
 * Reading sockets into one shared buffer.
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
 * These are Node internals, so they are feature-detected, never assumed: the three fields are
 * looked up once on a socket made for the purpose (Node's net.Socket constructor sets them), and
 * where any is missing, or a handle has no useUserBuffer, or useUserBuffer throws, the socket
 * keeps Node's own reads ('data' events). `sharedReadBufferSupported()` says which case this Node
 * is. Used only where every piece is there (a TCP or Pipe handle with useUserBuffer, the three
 * symbols, no onread already, nothing buffered yet); any other stream keeps 'data' events.
 * `WebSocketOptions.sharedReadBuffer: false` (plugin option too) turns it off.
 */
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { ARENA_SIZE, readArena } from '../protocol/mask.js'

export const SHARED_READ_SIZE = ARENA_SIZE

let sharedBuffer: Buffer | null = null

interface ReadSymbols { buffer: symbol, callback: symbol, generator: symbol }
/** undefined: not looked up yet; null: this Node has no such fields */
let readSymbols: ReadSymbols | null | undefined

type Handle = { useUserBuffer?: (buffer: Uint8Array) => void, constructor?: { name?: string } }
type LendableSocket = Duplex & { _handle?: Handle | null } & Record<symbol, unknown>

function findSymbols (socket: object): ReadSymbols | null {
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

function symbols (): ReadSymbols | null {
  if (readSymbols === undefined) {
    try {
      readSymbols = findSymbols(new Socket())
    } catch {
      readSymbols = null
    }
  }
  return readSymbols
}

/**
 * True when this Node's sockets have the fields reading into a caller's buffer relies on: accepted
 * TCP and Unix-socket connections then read into the shared buffer (unless `sharedReadBuffer` is
 * false). False: every socket keeps Node's own reads, with the same results.
 */
export function sharedReadBufferSupported (): boolean {
  return symbols() !== null
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
  const fields = symbols()
  if (fields === null || !(fields.buffer in s) || s[fields.buffer] !== null) return false
  if (s.readableLength > 0 || s.destroyed) return false
  sharedBuffer ??= readArena() ?? Buffer.allocUnsafeSlow(SHARED_READ_SIZE)
  try {
    handle.useUserBuffer(sharedBuffer)
  } catch {
    // a Node whose handle refuses the buffer: the socket keeps its own reads
    return false
  }
  s[fields.buffer] = sharedBuffer
  s[fields.callback] = onRead
  s[fields.generator] = null
  return true
}
