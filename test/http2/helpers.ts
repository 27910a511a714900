/**
 * HTTP/2 test servers and clients: a Fastify app with `http2: true`, over TLS (a self-signed
 * certificate made once per process with openssl, `allowHTTP1` so the same port also serves
 * HTTP/1.1 upgrades) or cleartext (h2c, prior knowledge), on 127.0.0.1 port 0; and `node:http2`
 * sessions to it that wait for the server's SETTINGS.
 */
import { once } from 'node:events'
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type Settings } from 'node:http2'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocketPluginOptions } from '../../lib/index.js'
import { selfSignedCertificate } from '../../examples/http2.js'
import { deadline } from '../plugin/helpers.js'

let certificate: { key: string | Buffer, cert: string | Buffer } | undefined

/** The example's self-signed certificate for localhost and 127.0.0.1, made once per process. */
export function selfSigned (): { key: string | Buffer, cert: string | Buffer } {
  certificate ??= selfSignedCertificate()
  return certificate
}

export interface H2Server {
  app: FastifyInstance
  port: number
  origin: string
  close: () => Promise<void>
}

export type Transport = 'h2' | 'h2c'

/** Start an `http2: true` app (TLS with allowHTTP1, or h2c); `setup` declares routes before listen. */
export async function startH2 (transport: Transport, setup: (app: FastifyInstance) => void, options?: WebSocketPluginOptions): Promise<H2Server> {
  // typed as the default instance: the plugin's decorators and the routes are the same on any server
  const app = (transport === 'h2'
    ? Fastify({ http2: true, https: { allowHTTP1: true, ...selfSigned() } })
    : Fastify({ http2: true })) as unknown as FastifyInstance
  await app.register(websocket, options ?? {})
  setup(app)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const origin = `${transport === 'h2' ? 'https' : 'http'}://127.0.0.1:${port}`
  return { app, port, origin, close: () => app.close() }
}

export interface H2Client {
  session: ClientHttp2Session
  /** the server's SETTINGS, as received */
  settings: Settings
}

/** An HTTP/2 session to `origin`, once the server's SETTINGS arrived. */
export async function h2connect (origin: string): Promise<H2Client> {
  const session = http2.connect(origin, { rejectUnauthorized: false })
  session.on('error', () => {})
  const [settings] = await deadline(once(session, 'remoteSettings') as Promise<[Settings]>, 'the server SETTINGS')
  return { session, settings }
}

export interface H2Response { status: number, headers: IncomingHttpHeaders, body: string }

/** One request on `session` (any method, extended CONNECT included); resolves with the whole response. */
export async function h2request (session: ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<H2Response> {
  const stream = session.request(headers, { endStream: headers[':method'] !== 'CONNECT' })
  stream.on('error', () => {})
  const [response] = await deadline(once(stream, 'response') as Promise<[IncomingHttpHeaders]>, 'the response')
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  if (!stream.readableEnded) await deadline(once(stream, 'end'), 'the response body')
  stream.close()
  return { status: Number(response[':status']), headers: response, body: Buffer.concat(chunks).toString() }
}
