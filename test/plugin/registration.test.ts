// The plugin registered more than once in one app (a parent and a child context, two sibling
// prefixed contexts): one 'upgrade' listener per server, exactly one 101 per upgrade, each route
// served with the options of the registration nearest to it, and app.close() closing the
// connections of every registration with 1001.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'
import { deadline } from './helpers.js'
import { clientClosed, count, open, rawEcho, roundTrip } from './ws-clients.js'

function echo (socket: WebSocket): void {
  socket.on('message', (data: Buffer) => socket.send(data.toString()))
}

async function listen (app: FastifyInstance): Promise<{ port: number, url: (path: string) => string }> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { port, url: (path) => `ws://127.0.0.1:${port}${path}` }
}

const fifty = 'x'.repeat(50)

t.test('registered in a parent and a child context: one listener, one 101, the nearest options, close resolves', async (t) => {
  const app = Fastify()
  let child: FastifyInstance | undefined
  await app.register(websocket, { maxPayload: 100 })
  app.ws('/parent', echo)
  app.register(async (instance) => {
    await instance.register(websocket, { maxPayload: 10 })
    instance.ws('/echo', echo)
    child = instance
  }, { prefix: '/child' })
  const { port, url } = await listen(app)
  t.teardown(() => { if (app.server.listening) return app.close() })

  t.equal(app.server.listenerCount('upgrade'), 1, 'one upgrade listener for two registrations')
  for (const path of ['/parent', '/child/echo']) {
    const bytes = await rawEcho(port, path, ['first', 'second'])
    t.equal(count(bytes, 'HTTP/1.1 101'), 1, `exactly one 101 on ${path}`)
    t.equal(count(bytes, 'HTTP/1.1'), 1, `no other response written into the connection on ${path}`)
  }

  // each route gets the maxPayload of its own context's registration
  const parent = await open(url('/parent'))
  t.same(await roundTrip(parent, fifty), { echo: fifty }, 'the parent route accepts 50 bytes (maxPayload 100)')
  const small = await open(url('/child/echo'))
  t.same(await roundTrip(small, fifty), { code: 1009 }, 'the child route refuses 50 bytes (maxPayload 10)')
  const childClient = await open(url('/child/echo'))
  t.same(await roundTrip(childClient, 'short'), { echo: 'short' })
  t.equal(app.websocketConnections.size, 1, 'the parent registration holds the parent route\'s connection')
  t.equal(child!.websocketConnections.size, 1, 'the child registration holds the child route\'s connection')

  const closes = [clientClosed(parent), clientClosed(childClient)]
  await deadline(app.close(), 'app.close() to resolve')
  t.same((await Promise.all(closes)).map((c) => c.code), [1001, 1001], 'every registration\'s connections get 1001')
  t.equal(app.server.listenerCount('upgrade'), 0, 'the listener is gone after close')
})

t.test('registered in two sibling prefixed contexts: one listener, each route with its own options', async (t) => {
  const app = Fastify()
  app.register(async (a) => {
    await a.register(websocket, { maxPayload: 10 })
    a.ws('/echo', echo)
  }, { prefix: '/a' })
  app.register(async (b) => {
    await b.register(websocket, { maxPayload: 100, protocols: ['b.v1'] })
    b.ws('/echo', echo)
  }, { prefix: '/b' })
  const { port, url } = await listen(app)
  t.teardown(() => { if (app.server.listening) return app.close() })

  t.equal(app.server.listenerCount('upgrade'), 1)
  for (const path of ['/a/echo', '/b/echo']) {
    const bytes = await rawEcho(port, path, ['first', 'second'])
    t.equal(count(bytes, 'HTTP/1.1 101'), 1, `exactly one 101 on ${path}`)
  }
  const a = await open(url('/a/echo'))
  t.same(await roundTrip(a, fifty), { code: 1009 }, '/a has maxPayload 10')
  const b = await open(url('/b/echo'))
  t.same(await roundTrip(b, fifty), { echo: fifty }, '/b has maxPayload 100')

  const a2 = await open(url('/a/echo'))
  const closes = [clientClosed(a2), clientClosed(b)]
  await deadline(app.close(), 'app.close() to resolve')
  t.same((await Promise.all(closes)).map((c) => c.code), [1001, 1001])
})

t.test('a plugin registered in a child keeps the parent\'s routes on the parent\'s options', async (t) => {
  const app = Fastify()
  await app.register(websocket, { maxPayload: 10 })
  app.register(async (child) => {
    await child.register(websocket, { maxPayload: 100 })
    child.ws('/big', echo)
  })
  app.register(async (sibling) => {
    // no registration here: the nearest one is the root's
    sibling.ws('/small', echo)
  })
  await app.ready()
  t.teardown(() => app.close())
  const big = await app.injectWS('/big')
  const small = await app.injectWS('/small')
  const answers = await Promise.all([big, small].map((client) => deadline(new Promise<string>((resolve) => {
    client.once('message', (data: Buffer) => resolve(`echo ${data.length}`))
    client.once('close', (code: number) => resolve(`close ${code}`))
    client.send(fifty)
  }), 'an answer')))
  t.same(answers, ['echo 50', 'close 1009'])
})
