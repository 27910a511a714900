// allowedOrigins: 'same-origin' (cross-site WebSocket hijacking): the Origin must name the host
// the request was sent to, or be listed; else 403 before the upgrade.
import t from 'tap'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { RawWebSocket } from '../helpers/raw-client.js'
import { h2connect, h2request, startH2 } from '../http2/helpers.js'
import { listening, openClient, refusedStatus } from './helpers.js'

t.test('same-origin: the Host\'s own origin opens, another site gets 403, no Origin opens', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { allowedOrigins: 'same-origin' })
  app.ws('/chat', () => {})
  const port = await listening(app)
  const url = `ws://127.0.0.1:${port}/chat`
  const same = await openClient(url, { origin: `http://127.0.0.1:${port}` })
  same.close()
  const refused = await refusedStatus(url, { origin: 'https://evil.example' })
  t.equal(refused.status, 403)
  t.match(JSON.parse(refused.body), { code: 'WS_ERR_ORIGIN_FORBIDDEN' })
  // another port is another origin (RFC 6454 §4)
  t.equal((await refusedStatus(url, { origin: `http://127.0.0.1:${port + 1}` })).status, 403)
  const noOrigin = await openClient(url)
  noOrigin.close()
  // the default port of the scheme may be implicit in the Origin or the Host
  const named = await openClient(url, { origin: 'http://chat.example', headers: { host: 'chat.example:80' } })
  named.close()
})

t.test('same-origin with listed origins: either opens', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/chat', { allowedOrigins: ['same-origin', 'https://app.example'] }, () => {})
  const port = await listening(app)
  const url = `ws://127.0.0.1:${port}/chat`
  ;(await openClient(url, { origin: 'https://APP.example' })).close()
  ;(await openClient(url, { origin: `http://127.0.0.1:${port}` })).close()
  t.equal((await refusedStatus(url, { origin: 'https://other.example' })).status, 403)
})

t.test('same-origin over HTTP/2 (RFC 8441): the :authority is the host', async (t) => {
  const server = await startH2('h2c', (app) => { app.ws('/chat', () => {}) }, { allowedOrigins: 'same-origin' })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const base = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/chat', 'sec-websocket-version': '13' }
  const refused = await h2request(session, { ...base, origin: 'https://evil.example' })
  t.equal(refused.status, 403)
  t.equal(JSON.parse(refused.body).code, 'WS_ERR_ORIGIN_FORBIDDEN')
  const client = await RawWebSocket.connectH2(session, '/chat', { headers: { origin: server.origin } })
  t.equal(client.status, 200, 'the own origin opens')
})
