// Real `ws` clients and a raw TCP client for the registration tests: open, echo, close, and the
// exact bytes of a handshake. Every wait has a deadline; no sleeps.
import { connect, type Socket } from 'node:net'
import { WebSocket as WsClient } from 'ws'
import { deadline, upgradeRequest } from './helpers.js'

export function open (url: string): Promise<WsClient> {
  const client = new WsClient(url)
  return deadline(new Promise((resolve, reject) => {
    client.once('open', () => resolve(client))
    client.once('error', reject)
  }), `open ${url}`)
}

export function clientClosed (client: WsClient): Promise<{ code: number, reason: string }> {
  return deadline(new Promise((resolve) => {
    client.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))
  }), 'the client to see the close')
}

/** Send a text message and wait for the answer, or for the close that refuses it. */
export function roundTrip (client: WsClient, text: string): Promise<{ echo?: string, code?: number }> {
  return deadline(new Promise((resolve, reject) => {
    client.once('message', (data: Buffer) => resolve({ echo: data.toString() }))
    client.once('close', (code: number) => resolve({ code }))
    client.once('error', reject)
    client.send(text)
  }), `the answer to ${text.length} bytes`)
}

/** A masked text frame of a client (RFC 6455 §5.2, payload under 126 bytes). */
export function maskedText (text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked])
}

/**
 * Upgrade on a raw TCP connection, then send masked text frames one at a time, each once the
 * previous one came back; resolve with every byte the server sent: the handshake responses
 * and frames exactly as written.
 */
export function rawEcho (port: number, path: string, texts: readonly string[]): Promise<Buffer> {
  return deadline(new Promise((resolve, reject) => {
    let next = 0
    const socket: Socket = connect(port, '127.0.0.1', () => {
      socket.write(upgradeRequest(path))
      socket.write(maskedText(texts[next]))
    })
    let received = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (!received.includes(texts[next])) return
      if (++next < texts.length) {
        socket.write(maskedText(texts[next]))
        return
      }
      socket.destroy()
      resolve(received)
    })
    socket.on('error', reject)
    socket.on('close', () => resolve(received))
  }), `the echo of ${texts.join(', ')} on a raw connection`)
}

export function count (haystack: Buffer, needle: string): number {
  let n = 0
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) n++
  return n
}
