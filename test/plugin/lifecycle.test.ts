// Open connections per route, open/close hooks, handler errors (sync and async) and logging.
import t from 'tap'
import Fastify from 'fastify'
import websocket, { type WebSocket, type WebSocketCloseInfo } from '../../lib/index.js'
import { closed, json, logCapture, message, until } from './helpers.js'

t.test('open connections are visible per route: count and iterate', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/a', (socket) => { socket.send('a') })
  app.register(async (child) => {
    child.ws('/b/:id', (socket) => { socket.send('b') })
  }, { prefix: '/child' })
  await app.ready()

  const a1 = await app.injectWS('/a')
  const a2 = await app.injectWS('/a')
  const b1 = await app.injectWS('/child/b/1')
  await Promise.all([message(a1), message(a2), message(b1)])
  t.equal(app.websocketConnections.size, 3)
  t.equal(app.websocketConnectionsByRoute.get('/a')?.size, 2)
  t.equal(app.websocketConnectionsByRoute.get('/child/b/:id')?.size, 1)

  // iterate: broadcast to one route
  for (const socket of app.websocketConnectionsByRoute.get('/a') ?? []) socket.send('broadcast')
  t.same(await Promise.all([message(a1), message(a2)]), ['broadcast', 'broadcast'])

  a1.close()
  await closed(a1)
  await until(() => app.websocketConnectionsByRoute.get('/a')?.size === 1, 'the registry to drop the closed socket')
  t.equal(app.websocketConnections.size, 2)
})

t.test('open and close hooks, encapsulated like Fastify hooks', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const events: string[] = []
  let closeInfo: WebSocketCloseInfo | undefined
  // a "metrics" plugin: fp-like (registered on the root), sees every route
  app.addWebSocketHook('onOpen', (_socket, request) => { events.push(`root open ${request.url}`) })
  app.addWebSocketHook('onClose', (_socket, request, info) => { events.push(`root close ${request.url} ${info.code}`); closeInfo = info })
  app.register(async (child) => {
    // an "auth expiry" hook local to this context
    child.addWebSocketHook('onOpen', (socket) => { events.push('child open'); socket.send('hooked') })
    child.ws('/inner', () => {})
  })
  app.ws('/outer', (socket) => { socket.send('outer') })
  await app.ready()

  const outer = await app.injectWS('/outer')
  t.equal(await message(outer), 'outer')
  const inner = await app.injectWS('/inner')
  t.equal(await message(inner), 'hooked')
  const innerClosed = closed(inner)
  inner.close(4001, 'bye')
  await innerClosed
  await until(() => closeInfo !== undefined, 'the onClose hook')
  t.same(events, ['root open /outer', 'root open /inner', 'child open', 'root close /inner 4001'])
  t.match(closeInfo, { code: 4001, reason: 'bye', wasClean: true, durationMs: Number })
  t.throws(() => app.addWebSocketHook('onMessage' as any, () => {}), /unknown WebSocket hook/)
})

t.test('handler errors, sync and async: logged with request.log, closed 1011, sent to errorHandler', async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'debug', stream: logs.stream } })
  t.teardown(() => app.close())
  const handled: Array<{ message: string, url: string }> = []
  await app.register(websocket, {
    errorHandler: (error, socket, request) => {
      handled.push({ message: (error as Error).message, url: request.url })
      socket.send({ sorry: true })
    }
  })
  app.ws('/sync', () => { throw new Error('sync boom') })
  app.ws('/async', async () => { await Promise.resolve(); throw new Error('async boom') })
  app.ws('/listener', (socket) => { socket.on('message', () => { throw new Error('listener boom') }) })
  app.ws('/route-handler', { ws: { errorHandler: (_error: unknown, socket: WebSocket) => { socket.send('route-level') } } }, () => { throw new Error('route boom') })
  app.ws('/typed', { schema: { message: { type: 'object' } }, messageHandlers: { explode: async () => { throw new Error('table boom') } } } as any, () => {})
  await app.ready()

  for (const [path, boom] of [['/sync', 'sync boom'], ['/async', 'async boom'], ['/listener', 'listener boom']]) {
    const client = await app.injectWS(path)
    const done = closed(client)
    if (path === '/listener') client.send('go')
    t.same(await json(client), { sorry: true }, `${path}: the errorHandler could still talk`)
    const result = await done
    t.equal(result.code, 1011, `${path}: closed with 1011`)
    t.equal(result.reason, '', 'no internal detail on the wire')
    const logged = logs.lines.find((l) => l.err?.message === boom)
    t.ok(logged, `${path}: logged`)
    t.equal(logged?.level, 50, 'at error level')
    t.ok(logged?.reqId, 'with the request\'s logger (reqId)')
  }
  t.same(handled.map((h) => h.message), ['sync boom', 'async boom', 'listener boom'])

  const routeLevel = await app.injectWS('/route-handler')
  t.equal(await message(routeLevel), 'route-level', 'the route errorHandler overrides the plugin one')
  t.equal((await closed(routeLevel)).code, 1011)

  const typed = await app.injectWS('/typed')
  typed.send({ type: 'explode' })
  t.equal((await closed(typed)).code, 1011, 'a message handler error closes 1011 too')
  t.ok(logs.lines.find((l) => l.err?.message === 'table boom'))
})

t.test('open and close are logged through request.log with code and duration', async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'debug', stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/log', () => {})
  const client = await app.injectWS('/log')
  client.close(1000)
  await closed(client)
  await until(() => logs.lines.some((l) => l.msg === 'websocket closed'), 'the close log line')
  const open = logs.lines.find((l) => l.msg === 'websocket open')
  const close = logs.lines.find((l) => l.msg === 'websocket closed')
  t.match(open, { level: 20, route: '/log', reqId: String })
  t.match(close, { level: 30, code: 1000, wasClean: true, durationMs: Number, reqId: open?.reqId })
})

t.test('app.close() closes open connections with 1001', async (t) => {
  const app = Fastify()
  await app.register(websocket)
  app.ws('/stay', (socket) => { socket.send('hi') })
  const client = await app.injectWS('/stay')
  await message(client)
  const done = closed(client)
  await app.close()
  t.equal((await done).code, 1001)
  t.equal(app.websocketConnections.size, 0)
})
