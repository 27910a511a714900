// Declaring WebSocket routes the @fastify/websocket way: what is refused at declaration (a
// method other than GET, a handler that is not a function), and what hooks of other plugins
// read on WebSocket routes (`request.routeOptions.schema.hide`, `request.ws`).
import t from 'tap'
import Fastify, { type FastifyRequest } from 'fastify'
import websocket from '../../lib/index.js'
import { message, rawRequest, upgradeRequest } from './helpers.js'

const noop = (): void => {}

t.test('websocket: true or wsHandler on a method other than GET throws a coded error at declaration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const refused = { code: 'FST_ERR_WS_ROUTE_METHOD', message: /GET/ }
  t.throws(() => app.post('/post', { websocket: true }, noop as never), refused)
  t.throws(() => app.route({ method: 'PUT', url: '/put', websocket: true, handler: noop }), refused)
  t.throws(() => app.route({ method: ['GET', 'POST'], url: '/two', websocket: true, handler: noop }), refused)
  t.throws(() => app.route({ method: 'DELETE', url: '/del', handler: noop, wsHandler: noop }), refused)
  // GET, and GET with HEAD, are accepted
  app.route({ method: ['GET', 'HEAD'], url: '/get-head', websocket: true, handler: (socket: any) => socket.send('gh') })
  app.get('/get', { websocket: true }, (socket: any) => socket.send('g'))
  t.equal(await message(await app.injectWS('/get-head')), 'gh')
  t.equal(await message(await app.injectWS('/get')), 'g')
  t.equal((await app.inject({ method: 'POST', url: '/post' })).statusCode, 404, 'the refused route does not exist')
})

t.test('the check holds for a route declared before the plugin, and rejects register() inside a plugin', async (t) => {
  const early = Fastify()
  t.teardown(() => early.close())
  t.throws(() => early.post('/early', { websocket: true }, noop as never), { code: 'FST_ERR_WS_ROUTE_METHOD' })

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.register(async (child) => { child.patch('/inside', { websocket: true }, noop as never) })
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_WS_ROUTE_METHOD' })
})

t.test('a handler or wsHandler that is not a function throws a coded error at declaration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const refused = { code: 'FST_ERR_WS_INVALID_HANDLER', name: 'TypeError' }
  t.throws(() => app.route({ method: 'GET', url: '/ws-handler', handler: async () => 'http', wsHandler: 'nope' as never }), refused)
  t.throws(() => app.route({ method: 'GET', url: '/ws-handler-obj', handler: async () => 'http', wsHandler: {} as never }), refused)
  t.throws(() => app.get('/handler', { websocket: true }, 'nope' as never), refused)
  t.throws(() => app.ws('/shorthand', 42 as never), refused)
  t.throws(() => app.ws('/shorthand-options', {}, 42 as never), refused)
  t.throws(() => app.ws('/bad-table', { messageHandlers: 'nope' as never }, noop), { code: 'FST_ERR_WS_INVALID_HANDLER' })
  // wsHandler: undefined is simply absent: a plain route
  app.route({ method: 'GET', url: '/plain', handler: async () => 'plain', wsHandler: undefined })
  t.equal((await app.inject('/plain')).body, 'plain')
})

t.test("Fastify's automatic HEAD route of a WebSocket route keeps answering", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.get('/live', { websocket: true }, (socket: any) => socket.send('live'))
  app.ws('/shorthand', (socket) => { socket.send('short') })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  for (const path of ['/live', '/shorthand']) {
    // RFC 6455 §4.1: "The method of the request MUST be GET": a HEAD upgrade gets 405
    const head = await rawRequest(port, upgradeRequest(path).replace(/^GET/, 'HEAD'))
    t.match(head, /^HTTP\/1\.1 405 /, `${path}: HEAD upgrade`)
    t.match(head, /\r\nallow: GET\r\n/i)
    t.equal((await app.inject({ method: 'HEAD', url: path })).statusCode, 426, `${path}: a plain HEAD`)
  }
})

t.test('schema.hide is true on WebSocket-only routes, so hooks reading it (as @fastify/swagger does) work', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const seen: Array<{ url: string, hide: unknown }> = []
  app.addHook('onRequest', async (request) => {
    // what a documentation plugin's hook does: no optional chaining on schema
    seen.push({ url: request.url, hide: request.routeOptions.schema!.hide })
  })
  await app.register(websocket)
  app.get('/flag', { websocket: true }, (socket: any) => socket.send('flag'))
  app.ws('/short', (socket) => { socket.send('short') })
  app.ws('/typed', { schema: { message: { type: 'object', required: ['n'] } } }, (socket) => {
    socket.on('message', (m: { n: number }) => socket.send({ double: m.n * 2 }))
  })
  app.ws('/shown', { schema: { hide: false } }, (socket) => { socket.send('shown') })

  t.equal(await message(await app.injectWS('/flag')), 'flag')
  t.equal(await message(await app.injectWS('/short')), 'short')
  const typed = await app.injectWS('/typed')
  typed.send({ n: 21 })
  t.same(JSON.parse(await message(typed)), { double: 42 }, "the user's schema.message is kept")
  typed.send({ nope: true })
  t.match(JSON.parse(await message(typed)), { code: 'WS_ERR_MESSAGE_SCHEMA' })
  t.equal(await message(await app.injectWS('/shown')), 'shown')
  t.same(seen, [
    { url: '/flag', hide: true },
    { url: '/short', hide: true },
    { url: '/typed', hide: true },
    { url: '/shown', hide: false }
  ], 'an explicit hide: false is kept')

  const routes = new Map<string, unknown>()
  const other = Fastify()
  t.teardown(() => other.close())
  other.addHook('onRoute', (route) => { routes.set(`${String(route.method)} ${route.url}`, (route.schema as { hide?: unknown } | undefined)?.hide) })
  await other.register(websocket)
  other.ws('/a', noop)
  other.route({ method: 'GET', url: '/b', handler: async () => 'http', wsHandler: noop })
  await other.ready()
  t.equal(routes.get('GET /a'), true, 'onRoute hooks see hide')
  t.equal(routes.get('HEAD /a'), true, 'so does the automatic HEAD route')
  t.equal(routes.get('GET /b'), undefined, 'a wsHandler route serves HTTP too: its schema is left alone')
})

t.test('request.ws is true for an upgrade request and false for a plain request, in hooks and handlers', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const inHooks: Array<[string, unknown]> = []
  app.addHook('onRequest', async (request) => { inHooks.push([request.url, request.ws]) })
  await app.register(websocket)
  app.route({
    method: 'GET',
    url: '/both',
    handler: async (request) => ({ ws: request.ws }),
    wsHandler: (socket, request) => { socket.send(`ws=${String(request.ws)}`) }
  })
  app.ws('/only', (socket, request: FastifyRequest) => { socket.send(`ws=${String(request.ws)}`) })
  app.get('/rest', async (request) => ({ ws: request.ws }))

  t.same((await app.inject('/both')).json(), { ws: false })
  t.same((await app.inject('/rest')).json(), { ws: false })
  t.equal(await message(await app.injectWS('/both')), 'ws=true')
  t.equal(await message(await app.injectWS('/only')), 'ws=true')
  // an upgrade to a REST route is routed as a request too: request.ws says it was an upgrade
  await t.rejects(app.injectWS('/rest'), { name: 'WebSocketUpgradeError', statusCode: 200 })
  t.same(inHooks, [['/both', false], ['/rest', false], ['/both', true], ['/only', true], ['/rest', true]])
})

t.test('addWebSocketHook refuses an unknown name and a non-function with coded errors', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  t.throws(() => app.addWebSocketHook('onMessage' as never, noop as never), { name: 'TypeError', code: 'FST_ERR_WS_UNKNOWN_HOOK' })
  t.throws(() => app.addWebSocketHook('onOpen', 'nope' as never), { name: 'TypeError', code: 'FST_ERR_WS_INVALID_HOOK' })
})
