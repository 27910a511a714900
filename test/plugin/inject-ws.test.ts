// injectWS used the way an application's own test file would: build the app, never listen,
// talk to a WebSocket route through the real handshake, hooks and frame codec.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { WebSocketUpgradeError } from '../../lib/index.js'
import { until } from './helpers.js'

// --- the application under test (what would live in the user's app.ts) ---
async function buildApp (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(websocket, { protocols: ['chat.v1'] })
  app.decorateRequest('user', '')
  app.addHook('onRequest', async (request, reply) => {
    const token = request.headers.authorization
    if (token === undefined || !token.startsWith('Bearer ')) return reply.code(401).send({ error: 'missing token' })
    ;(request as unknown as { user: string }).user = token.slice(7)
  })
  app.ws('/rooms/:room', {
    schema: {
      params: { type: 'object', properties: { room: { type: 'string', minLength: 3 } } },
      message: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }
    }
  }, (socket, request) => {
    const { room } = request.params as { room: string }
    const user = (request as unknown as { user: string }).user
    const { lang } = request.query as { lang?: string }
    socket.send({ welcome: user, room, lang: lang ?? 'en', protocol: socket.protocol })
    socket.on('message', (m: { text: string }) => socket.send({ from: user, text: m.text }))
  })
  return app
}

// --- the user's tests ---
t.test('a connected client, no network', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const ws = await app.injectWS('/rooms/lobby', {
    headers: { authorization: 'Bearer alice' },
    query: { lang: 'fr' },
    protocols: ['chat.v1']
  })
  t.equal(app.server.listening, false, 'nothing listens')
  t.equal(ws.protocol, 'chat.v1')

  // messages sent before a listener is attached are kept, so no race here
  const iterator = ws[Symbol.asyncIterator]()
  const next = async (): Promise<unknown> => JSON.parse(String((await iterator.next()).value))
  t.same(await next(), { welcome: 'alice', room: 'lobby', lang: 'fr', protocol: 'chat.v1' })
  ws.send({ text: 'bonjour' })
  t.same(await next(), { from: 'alice', text: 'bonjour' })
  ws.send({ nope: true })
  t.match(await next(), { type: 'error', code: 'WS_ERR_MESSAGE_SCHEMA' })

  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)))
  ws.close(1000)
  t.equal(await closed, 1000)
  t.equal((await iterator.next()).done, true, 'the iterator ends with the connection')
})

t.test('a refused upgrade reports its status and body', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())

  await t.rejects(app.injectWS('/rooms/lobby'), { name: 'WebSocketUpgradeError', code: 'FST_ERR_WS_UPGRADE_REFUSED', statusCode: 401 })
  const error = await app.injectWS('/rooms/lobby').catch((err: unknown) => err)
  t.ok(error instanceof WebSocketUpgradeError)
  const refused = error as WebSocketUpgradeError
  t.same(refused.json(), { error: 'missing token' })
  t.match(refused.headers['content-type'], /application\/json/)

  const badParams = await app.injectWS('/rooms/ab', { headers: { authorization: 'Bearer bob' } }).catch((err: unknown) => err) as WebSocketUpgradeError
  t.equal(badParams.statusCode, 400, 'route schema validation runs on the upgrade request')
  t.match(badParams.json(), { code: 'FST_ERR_VALIDATION' })

  const missing = await app.injectWS('/nowhere', { headers: { authorization: 'Bearer bob' } }).catch((err: unknown) => err) as WebSocketUpgradeError
  t.equal(missing.statusCode, 404)
})

t.test('many clients side by side, then a clean shutdown', async (t) => {
  const app = await buildApp()
  const clients = await Promise.all(['ann', 'ben', 'cid'].map((user) =>
    app.injectWS('/rooms/general', { headers: { authorization: `Bearer ${user}` } })))
  t.equal(app.websocketConnections.size, 3)
  const welcomes = await Promise.all(clients.map((ws) => new Promise<unknown>((resolve) => ws.once('message', (d: Buffer) => resolve(JSON.parse(d.toString()))))))
  t.same(welcomes.map((w) => (w as { welcome: string }).welcome), ['ann', 'ben', 'cid'])
  const codes = Promise.all(clients.map((ws) => new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)))))
  await app.close()
  t.same(await codes, [1001, 1001, 1001])
})

t.test('abrupt ends travel through the in-memory transport both ways', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const serverClosed: number[] = []
  app.addWebSocketHook('onClose', (_socket, _request, info) => { serverClosed.push(info.code) })
  app.ws('/drop', (socket) => { socket.on('message', () => socket.terminate()) })
  app.ws('/stay', () => {})

  const dropped = await app.injectWS('/drop')
  const droppedClose = new Promise<[number, boolean]>((resolve) => dropped.once('close', (code: number, _r: Buffer, wasClean: boolean) => resolve([code, wasClean])))
  dropped.send('bye')
  t.same(await droppedClose, [1006, false], 'the server dropped the connection: 1006 for the client')

  const client = await app.injectWS('/stay')
  t.equal(app.websocketConnectionsByRoute.get('/stay')?.size, 1)
  client.terminate()
  await until(() => serverClosed.length === 2, 'the server to see the drop')
  t.same(serverClosed, [1006, 1006])
  t.equal(app.websocketConnectionsByRoute.get('/stay')?.size, 0)
})

// a throwaway self-signed certificate (CN=localhost, 100 years), only to build an https server
const key = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5dKY4WcfieswTDmp
LgO6Mi1mrWwd+5hnaS/AVg0/i9WhRANCAARBAer+GhRZYUC/1L68HPsM4glL3w7S
eIaJDcZjfp58cf9+XI94QL1CkgEBWz1eHxg9vwbsYDQK2akPBMwUR3uz
-----END PRIVATE KEY-----`
const cert = `-----BEGIN CERTIFICATE-----
MIIBfjCCASWgAwIBAgIUCYYZuIuQRQhL7SZJeamIQTowYfIwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNDA1MTEzMFoYDzIxMjYxMDMx
MDUxMTMwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARBAer+GhRZYUC/1L68HPsM4glL3w7SeIaJDcZjfp58cf9+XI94QL1C
kgEBWz1eHxg9vwbsYDQK2akPBMwUR3uzo1MwUTAdBgNVHQ4EFgQUQuwALfExyTEU
+bACD74XYWhquJcwHwYDVR0jBBgwFoAUQuwALfExyTEU+bACD74XYWhquJcwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiBkGCjjKXIxVUbdhEBxH4v+
ftxq+Ua7HGGREuwMxZOHjgIgOgOHCI1Bpm48ASeOtzvclylZ8TzA2Imb3tRX9h0C
5zE=
-----END CERTIFICATE-----`

t.test('an https app: injectWS hands the server a secure in-memory connection', async (t) => {
  const app = Fastify({ https: { key, cert } })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/secure', (socket, request) => { socket.send(`${request.protocol} ${String(request.raw.socket.remoteAddress)}`) })
  const client = await app.injectWS('/secure')
  const text = await new Promise<string>((resolve) => client.once('message', (d: Buffer) => resolve(d.toString())))
  t.equal(text, 'https 127.0.0.1')
  client.close()
})

t.test('injectWS(path, context, { onInit, onOpen }): both get the client socket, in order, before it resolves', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  // the handler sends at once: those messages may arrive with the 101 itself
  const serverGot: string[] = []
  app.ws('/greet', (socket) => {
    socket.on('message', (data: Buffer) => serverGot.push(data.toString()))
    for (const word of ['one', 'two', 'three']) socket.send(word)
  })
  const steps: string[] = []
  const received: string[] = []
  let initSocket: unknown
  let openSocket: unknown
  const ws = await app.injectWS('/greet', {}, {
    onInit (socket) {
      steps.push(`init ${socket.readyState}`)
      initSocket = socket
      socket.on('message', (data: Buffer) => received.push(data.toString()))
    },
    onOpen (socket) {
      steps.push(`open ${socket.readyState}`)
      openSocket = socket
      socket.send('hello from onOpen')
    }
  })
  steps.push('resolved')
  t.same(steps, ['init 1', 'open 1', 'resolved'])
  t.equal(initSocket, ws, 'onInit got the socket injectWS resolves with')
  t.equal(openSocket, ws, 'so did onOpen')
  await until(() => received.length === 3, 'three messages')
  t.same(received, ['one', 'two', 'three'], 'a listener attached in onInit sees every message')
  await until(() => serverGot.length === 1, 'the message sent in onOpen')
  t.same(serverGot, ['hello from onOpen'])
  ws.close()
})

t.test('injectWS hooks: a throw rejects and drops the connection; a non-function rejects before connecting', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  let upgrades = 0
  const serverCloses: number[] = []
  app.addHook('onRequest', async () => { upgrades++ })
  app.addWebSocketHook('onClose', (_socket, _request, info) => { serverCloses.push(info.code) })
  app.ws('/ws', () => {})

  await t.rejects(app.injectWS('/ws', {}, { onInit () { throw new Error('init failed') } }), { message: 'init failed' })
  await until(() => serverCloses.length === 1, 'the server to see the connection drop')
  await t.rejects(app.injectWS('/ws', {}, { onOpen () { throw new Error('open failed') } }), { message: 'open failed' })
  await until(() => serverCloses.length === 2, 'the server to see the second drop')
  t.same(serverCloses, [1006, 1006])

  const before = upgrades
  await t.rejects(app.injectWS('/ws', {}, { onInit: 'nope' as never }), { name: 'TypeError', code: 'FST_ERR_WS_INVALID_HOOK' })
  await t.rejects(app.injectWS('/ws', {}, { onOpen: 42 as never }), { name: 'TypeError', code: 'FST_ERR_WS_INVALID_HOOK' })
  t.equal(upgrades, before, 'no upgrade request was made')

  // a refused upgrade opens no socket: neither hook runs
  const called: string[] = []
  await t.rejects(app.injectWS('/missing', {}, { onInit: () => called.push('init'), onOpen: () => called.push('open') }), { statusCode: 404, name: 'WebSocketUpgradeError' })
  t.same(called, [])
})
