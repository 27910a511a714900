// Admission before the handshake (issue 5): the Origin allow-list (403) and connection limits
// (503), per plugin and per route, answered before any 101.
import t from 'tap'
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from '../../lib/index.js'
import { assertServes, clientFrame, deadline, RawClient, rawWebSocket, server, upgradeRequest } from './helpers.js'

async function status (port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number, body: string, head: string, client: RawClient }> {
  const client = await RawClient.connect(port)
  client.write(upgradeRequest(path, headers))
  const { status, head } = await client.response()
  if (status !== 101) await client.waitClosed()
  return { status, head, body: client.body().toString(), client }
}

function routes (app: FastifyInstance): void {
  app.ws('/echo', (socket) => { socket.on('message', (d: Buffer) => socket.send(d.toString())) })
  app.ws('/partner', { allowedOrigins: ['https://partner.example'] }, (socket) => { socket.send('partner') })
  app.ws('/custom', { allowedOrigins: (origin) => origin !== undefined && origin.endsWith('.trusted.example') }, (socket) => { socket.send('custom') })
}

t.test('Origin allow-list per plugin and per route: 403 before the upgrade', async (t) => {
  const opened: string[] = []
  const { app, port, log } = await server({ allowedOrigins: ['https://app.example', 'http://localhost:3000'] }, (app) => {
    app.addHook('onRequest', async (request) => { opened.push(request.url) })
    routes(app)
  })
  t.teardown(() => app.close())

  const good = await status(port, '/echo', { Origin: 'https://APP.example' })
  t.equal(good.status, 101, 'a listed origin (case-insensitive) is upgraded')
  good.client.socket.destroy()
  const none = await status(port, '/echo')
  t.equal(none.status, 101, 'no Origin (not a browser) is allowed by a list')
  none.client.socket.destroy()

  for (const origin of ['https://evil.example', 'null', 'https://app.example.evil.example', 'https://app.example:8443']) {
    const bad = await status(port, '/echo', { Origin: origin })
    t.equal(bad.status, 403, `${origin}: 403`)
    t.match(bad.body, /WS_ERR_ORIGIN_FORBIDDEN/)
  }

  // a route's list replaces the plugin's
  t.equal((await status(port, '/partner', { Origin: 'https://app.example' })).status, 403)
  const partner = await status(port, '/partner', { Origin: 'https://partner.example' })
  t.equal(partner.status, 101)
  partner.client.socket.destroy()
  // a function decides, and sees a missing Origin as undefined
  t.equal((await status(port, '/custom')).status, 403)
  const custom = await status(port, '/custom', { Origin: 'https://a.trusted.example' })
  t.equal(custom.status, 101)
  custom.client.socket.destroy()

  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('maxConnections per plugin: the excess upgrade gets 503 before the handshake', async (t) => {
  const sockets: WebSocket[] = []
  const { app, port, log } = await server({ maxConnections: 2 }, (app) => {
    app.ws('/a', (socket) => { sockets.push(socket); socket.on('message', (d: Buffer) => socket.send(d.toString())) })
    app.ws('/b', (socket) => { sockets.push(socket) })
  })
  t.teardown(() => app.close())
  const a = await rawWebSocket(port, '/a')
  const b = await rawWebSocket(port, '/b')
  const refused = await status(port, '/a')
  t.equal(refused.status, 503, 'a third connection anywhere in the plugin: 503')
  t.match(refused.head, /\r\nretry-after: 1/i)
  t.match(refused.body, /WS_ERR_TOO_MANY_CONNECTIONS/)
  t.equal(sockets.length, 2, 'the handler never ran for it')
  // one leaves: a slot frees once its close completed
  const closed = once(sockets[1], 'close')
  b.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])))
  await deadline(closed, 3000, 'close')
  const again = await rawWebSocket(port, '/a')
  again.write(clientFrame(0x1, 'x'))
  t.equal((await again.waitFrames(1))[0].payload.toString(), 'x')
  a.socket.destroy()
  again.socket.destroy()
  t.same(log.errors(), [])
})

t.test('maxConnections per route', async (t) => {
  const { app, port } = await server({}, (app) => {
    app.ws('/one', { maxConnections: 1 }, () => {})
    app.ws('/echo', (socket) => { socket.on('message', (d: Buffer) => socket.send(d.toString())) })
  })
  t.teardown(() => app.close())
  const first = await rawWebSocket(port, '/one')
  t.equal((await status(port, '/one')).status, 503, 'the route is full')
  t.equal(await assertServes(port, '/echo'), 'still alive', 'other routes are not limited')
  first.socket.destroy()
})

t.test('options are checked when declared', async (t) => {
  const { app } = await server({}, () => {})
  t.teardown(() => app.close())
  t.throws(() => app.ws('/x', { maxConnections: -1 }, () => {}), TypeError)
  t.throws(() => app.ws('/y', { allowedOrigins: 'https://a.example' as never }, () => {}), TypeError)
  t.throws(() => app.ws('/z', { bufferedAmountPolicy: 'explode' as never }, () => {}), TypeError)
  t.throws(() => app.ws('/w', { heartbeatInterval: 1.5 }, () => {}), TypeError)
})
