// Small helpers of the plugin tests: wait on events with a deadline, never on sleeps.
import { connect } from 'node:net'
import type { WebSocket } from '../../lib/index.js'

export function deadline<T> (promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Collect the next `count` messages (text as string, binary as Buffer). */
export function messages (ws: WebSocket, count: number): Promise<Array<string | Buffer>> {
  return deadline(new Promise((resolve) => {
    const got: Array<string | Buffer> = []
    const onMessage = (data: Buffer, binary: boolean): void => {
      got.push(binary ? data : data.toString('utf8'))
      if (got.length === count) {
        ws.off('message', onMessage)
        resolve(got)
      }
    }
    ws.on('message', onMessage)
  }), `${count} message(s)`)
}

export async function message (ws: WebSocket): Promise<string> {
  const [m] = await messages(ws, 1)
  return m.toString()
}

export async function json (ws: WebSocket): Promise<any> {
  return JSON.parse(await message(ws))
}

export interface Closed { code: number, reason: string, wasClean: boolean }

export function closed (ws: WebSocket): Promise<Closed> {
  return deadline(new Promise((resolve) => {
    ws.once('close', (code: number, reason: Buffer, wasClean: boolean) => resolve({ code, reason: reason.toString(), wasClean }))
  }), 'close')
}

/** Send raw HTTP bytes on a fresh TCP connection and return everything the server sent until it closed. */
export function rawRequest (port: number, request: string): Promise<string> {
  return deadline(new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request))
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
  }), 'the server to close the connection')
}

export function upgradeRequest (path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`
}

/** A log stream capturing pino JSON lines. */
export function logCapture (): { stream: { write (line: string): void }, lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  return { lines, stream: { write (line: string) { lines.push(JSON.parse(line)) } } }
}

/** Wait until `predicate()` holds, checking once per event-loop turn; fails after `ms`. */
export function until (predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (predicate()) resolve()
      else if (Date.now() > end) reject(new Error(`timed out waiting for ${what}`))
      else setImmediate(check)
    }
    check()
  })
}
