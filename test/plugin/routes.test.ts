// Routes follow Fastify's encapsulation: prefixes, hooks, decorators, error handlers; the
// plugin may be registered before or after the routes; route options and per-route overrides.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { WebSocketUpgradeError } from '../../lib/index.js'
import { closed, deadline, message, rawRequest, upgradeRequest } from './helpers.js'

async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

t.test('an onRequest hook rejecting the upgrade with 401: the client sees 401 and no 101', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  let handlerRan = false
  app.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== 'Bearer good') {
      return reply.code(401).send({ error: 'Unauthorized' })
    }
  })
  app.ws('/private', (socket) => { handlerRan = true; socket.send('welcome') })
  const port = await listen(app)

  const response = await rawRequest(port, upgradeRequest('/private'))
  t.match(response, /^HTTP\/1\.1 401 Unauthorized\r\n/)
  t.notMatch(response, /101 Switching Protocols/)
  t.match(response, /\r\n\r\n\{"error":"Unauthorized"\}$/)
  t.equal(handlerRan, false, 'the WebSocket handler never ran')

  // with a real client: the handshake fails with the status
  const refused = new WsClient(`ws://127.0.0.1:${port}/private`)
  refused.on('error', () => {})
  const status = await deadline(new Promise<number>((resolve) => {
    refused.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); refused.terminate() })
  }), 'unexpected-response')
  t.equal(status, 401)

  const client = new WsClient(`ws://127.0.0.1:${port}/private`, { headers: { authorization: 'Bearer good' } })
  const welcome = await deadline(new Promise<string>((resolve) => client.once('message', (d: Buffer) => resolve(d.toString()))), 'welcome')
  t.equal(welcome, 'welcome')
  client.close()
})

t.test('a prefixed route in a child context uses that context\'s decorator, hooks and error handler', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const order: string[] = []
  app.register(async (child) => {
    child.decorate('greeting', 'hello from the child')
    child.addHook('preHandler', async () => { order.push('child preHandler') })
    child.setErrorHandler(async (err: Error, _request, reply) => reply.code(418).send({ handledBy: 'child', message: err.message }))
    child.ws('/room/:name', { preValidation: async (request) => { if ((request.params as { name: string }).name === 'teapot') throw new Error('no teapots') } }, function (socket, request) {
      order.push('handler')
      socket.send(`${(this as unknown as { greeting: string }).greeting} in ${(request.params as { name: string }).name} at ${request.routeOptions.url}`)
    })
  }, { prefix: '/api' })
  // the decorator is not visible outside the child
  await app.ready()
  t.equal((app as unknown as { greeting?: string }).greeting, undefined)

  const client = await app.injectWS('/api/room/lobby')
  t.equal(await message(client), 'hello from the child in lobby at /api/room/:name')
  t.same(order, ['child preHandler', 'handler'])
  client.close()

  const error = await app.injectWS('/api/room/teapot').catch((err: unknown) => err) as WebSocketUpgradeError
  t.ok(error instanceof WebSocketUpgradeError)
  t.equal(error.statusCode, 418, 'the child context\'s error handler answered')
  t.same(error.json(), { handledBy: 'child', message: 'no teapots' })

  const notFound = await app.injectWS('/room/lobby').catch((err: unknown) => err) as WebSocketUpgradeError
  t.equal(notFound.statusCode, 404, 'no route without the prefix')
})

t.test('the plugin registered after the routes, and routes in a sibling plugin loaded first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/before', { websocket: true }, (socket: any) => { socket.send('before') })
  app.register(async (child) => {
    child.route({ method: 'GET', url: '/sibling', websocket: true, handler: (socket: any) => { socket.send('sibling') } } as any)
  })
  app.register(websocket)
  app.get('/after', { websocket: true }, (socket: any) => { socket.send('after') })
  await app.ready()
  for (const path of ['/before', '/sibling', '/after']) {
    const client = await app.injectWS(path)
    t.equal(await message(client), path.slice(1))
    client.close()
    await closed(client)
  }
})

t.test('the plugin registered in a child context serves that context\'s routes', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.get('/rest', async () => ({ rest: true }))
  app.register(async (child) => {
    await child.register(websocket)
    child.ws('/live', (socket) => { socket.send('live') })
  }, { prefix: '/v1' })
  await app.ready()
  t.equal(typeof (app as unknown as { ws?: unknown }).ws, 'undefined', 'no ws decorator outside the child')
  const port = await listen(app)
  const client = new WsClient(`ws://127.0.0.1:${port}/v1/live`)
  t.equal(await deadline(new Promise<string>((resolve) => client.once('message', (d: Buffer) => resolve(d.toString()))), 'live'), 'live')
  client.close()
  const rest = await app.inject('/rest')
  t.same(rest.json(), { rest: true })
})

t.test('websocket: true and wsHandler routes; a plain GET to a WebSocket-only route is 426', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.get('/only', { websocket: true }, (socket: any) => { socket.send('only') })
  app.route({
    method: 'GET',
    url: '/both',
    handler: async () => ({ plain: 'http' }),
    wsHandler: (socket, request) => { socket.send(`ws ${request.url}`) }
  })
  const plain = await app.inject('/both')
  t.same(plain.json(), { plain: 'http' })
  const upgradeOnly = await app.inject('/only')
  t.equal(upgradeOnly.statusCode, 426)
  t.equal(upgradeOnly.headers.upgrade, 'websocket')

  const both = await app.injectWS('/both', { query: { a: '1' } })
  t.equal(await message(both), 'ws /both?a=1')
  const only = await app.injectWS('/only')
  t.equal(await message(only), 'only')
})

t.test('per-route options override plugin options', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { maxPayload: 16, protocols: ['plugin.v1'] })
  const echo = (socket: any): void => { socket.on('message', (d: Buffer) => socket.send(d.toString())) }
  app.ws('/small', echo)
  app.ws('/large', { maxPayload: 1024, protocols: ['route.v2'] }, echo)
  app.get('/nested', { websocket: true, ws: { maxPayload: 64 } }, echo)

  const small = await app.injectWS('/small', { protocols: ['plugin.v1', 'route.v2'] })
  t.equal(small.protocol, 'plugin.v1')
  small.send('x'.repeat(17))
  t.equal((await closed(small)).code, 1009, 'the plugin maxPayload applies')

  const large = await app.injectWS('/large', { protocols: ['plugin.v1', 'route.v2'] })
  t.equal(large.protocol, 'route.v2', 'the route protocols replace the plugin ones')
  large.send('y'.repeat(1000))
  t.equal(await message(large), 'y'.repeat(1000))

  const nested = await app.injectWS('/nested')
  nested.send('z'.repeat(65))
  t.equal((await closed(nested)).code, 1009, 'ws: { maxPayload } of a websocket: true route')

  t.throws(() => app.ws('/bad', { maxPayload: -1 } as any, echo), /maxPayload/)
  t.throws(() => app.ws('/bad2', { invalidMessage: 'explode' } as any, echo), /invalidMessage/)
})

t.test('REST routes pay nothing: no hook is added to them', async (t) => {
  // (no automatic HEAD routes: Fastify gives those an onSend hook of its own)
  const app = Fastify({ exposeHeadRoutes: false })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.get('/rest', async () => 'ok')
  app.ws('/ws', () => {})
  await app.ready()
  const tree = app.printRoutes({ includeHooks: true, commonPrefix: false })
  t.match(tree, /\/rest \(GET\)/)
  t.notMatch(tree, /•|onRequest|preHandler|preValidation|onSend|onResponse/, tree)
})

t.test('a WebSocket route outside the plugin\'s context is an explicit 500, not a broken handler call', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(async (withPlugin) => {
    await withPlugin.register(websocket)
    withPlugin.ws('/in', (socket) => { socket.send('in') })
  })
  app.register(async (without) => {
    without.get('/out', { websocket: true }, () => { t.fail('never called') })
  })
  await app.ready()
  const port = await listen(app)
  const response = await rawRequest(port, upgradeRequest('/out'))
  t.match(response, /^HTTP\/1\.1 500 /)
  t.match(response, /FST_ERR_WS_NOT_REGISTERED/)
  t.notMatch(response, /101 Switching Protocols/)
})

t.test('a top-level errorHandler of app.ws() is Fastify\'s (HTTP); the WebSocket one goes under ws', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const wsErrors: string[] = []
  app.ws('/both-handlers', {
    onRequest: async (request) => { if (request.headers['x-fail'] === '1') throw new Error('hook failed') },
    errorHandler: async (err: Error, _request, reply) => reply.code(409).send({ http: err.message }),
    ws: { errorHandler: (err: unknown) => { wsErrors.push((err as Error).message) } }
  }, () => { throw new Error('handler failed') })
  const refused = await app.injectWS('/both-handlers', { headers: { 'x-fail': '1' } }).catch((err: unknown) => err) as WebSocketUpgradeError
  t.equal(refused.statusCode, 409)
  t.same(refused.json(), { http: 'hook failed' })
  const client = await app.injectWS('/both-handlers')
  t.equal((await closed(client)).code, 1011)
  t.same(wsErrors, ['handler failed'])
})
