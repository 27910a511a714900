/**
 * `injectWS()` for an http2 app: an HTTP/2 session over the in-memory socket and one RFC 8441
 * extended CONNECT stream, as a browser opens a WebSocket on the page's HTTP/2 connection.
 */
import { once } from 'node:events'
import http2, { type IncomingHttpHeaders } from 'node:http2'
import type { Duplex } from 'node:stream'
import { Server as TlsServer } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import { connectInMemory, WebSocketUpgradeError } from './inject.js'

export { isHttp2Server } from './http2.js'

/** A socket the handshake succeeded on, the bytes that came after it, and the response headers. */
export interface OpenedSocket {
  socket: Duplex
  head: Buffer
  headers: IncomingHttpHeaders
}

const EMPTY = Buffer.alloc(0)

/** RFC 8441 §5 over a memory socket: a CONNECT with :protocol websocket, answered by a 200. */
export async function openOverHttp2 (server: FastifyInstance['server'], target: string, extra: Record<string, string>): Promise<OpenedSocket> {
  const client = connectInMemory(server, { alpn: 'h2' })
  const secure = server instanceof TlsServer
  const session = http2.connect(`${secure ? 'https' : 'http'}://localhost`, { createConnection: () => client as never })
  session.on('error', () => {})
  // RFC 8441 §3: the client waits for SETTINGS_ENABLE_CONNECT_PROTOCOL before an extended CONNECT
  await once(session, 'remoteSettings')
  const headers: http2.OutgoingHttpHeaders = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': secure ? 'https' : 'http', ':path': target, ':authority': 'localhost' }
  for (const name of Object.keys(extra)) {
    const lower = name.toLowerCase()
    // HTTP/2 carries the authority as :authority (RFC 9113 §8.3.1)
    headers[lower === 'host' ? ':authority' : lower] = extra[name]
  }
  if (session.remoteSettings.enableConnectProtocol !== true) {
    session.destroy()
    throw new WebSocketUpgradeError(0, {}, 'the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL (no WebSocket route)')
  }
  const stream = session.request(headers, { endStream: false })
  stream.on('error', () => {})
  const [response] = await once(stream, 'response') as [IncomingHttpHeaders]
  const status = Number(response[':status'])
  if (status !== 200) {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    if (!stream.readableEnded) await once(stream, 'end')
    session.destroy()
    throw new WebSocketUpgradeError(status, response, Buffer.concat(chunks).toString('utf8'))
  }
  // the session exists for this one WebSocket: it ends with the stream
  stream.on('close', () => { session.close() })
  // a server END_STREAM is answered with ours, as a TCP socket answers a FIN
  stream.on('end', () => { stream.end() })
  return { socket: stream, head: EMPTY, headers: response }
}
