// Expiring credentials: at the deadline set with socket.expireAt() the connection closes with
// 4401 and the log line says 'credentials'; a fresh token moves the deadline.
import t from 'tap'
import Fastify from 'fastify'
import websocket, { CredentialsCloseCode, WebSocket } from '../../lib/index.js'
import { logCapture, until } from '../plugin/helpers.js'
import { clientClosed, listening, openClient } from './helpers.js'

t.test('a connection whose deadline passes closes with 4401; the log says why', async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(websocket)
  let server: WebSocket | undefined
  app.ws('/live', (socket) => {
    server = socket
    socket.expireAt(Date.now() + 50)
  })
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/live`)
  t.type(server!.expiresAt, 'number')
  t.same(await clientClosed(client), { code: 4401, reason: 'credentials expired' })
  t.equal(CredentialsCloseCode, 4401)
  await until(() => logs.lines.some((l) => l.msg === 'websocket closed'), 'the close line')
  t.match(logs.lines.find((l) => l.msg === 'websocket closed'), { code: 4401, closedBy: 'credentials', route: '/live' })
  t.same(app.websocketMetrics().total.closedBy, { credentials: 1 })
})

t.test('a fresh token extends the deadline; null removes it', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const events: string[] = []
  app.ws('/refresh', (socket) => {
    socket.expireAt(new Date(Date.now() + 100))
    socket.on('message', (data: Buffer) => {
      const text = data.toString()
      if (text === 'refresh') {
        // the app verified a fresh token here: its expiry becomes the deadline
        socket.expireAt(Date.now() + 60_000)
        events.push(`extended ${socket.expiresAt! > Date.now() + 30_000}`)
        socket.send('ok')
      } else if (text === 'forever') {
        socket.expireAt(null)
        events.push(`removed ${socket.expiresAt}`)
        socket.send('ok')
      }
    })
  })
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/refresh`)
  client.send('refresh')
  await new Promise((resolve) => client.once('message', resolve))
  // the first deadline (100 ms) passes while the connection stays open: a connection opened
  // after the refresh with a 200 ms deadline closing proves that time passed on the clock
  const probeServer = Fastify()
  t.teardown(() => probeServer.close())
  await probeServer.register(websocket)
  probeServer.ws('/short', (socket) => socket.expireAt(Date.now() + 200))
  const probePort = await listening(probeServer)
  const probe = await openClient(`ws://127.0.0.1:${probePort}/short`)
  t.equal((await clientClosed(probe)).code, 4401)
  t.equal(client.readyState, client.OPEN, 'the extended connection is still open')
  client.send('forever')
  await new Promise((resolve) => client.once('message', resolve))
  t.same(events, ['extended true', 'removed null'])
  client.close()
})

t.test('expireAt() refuses a bad deadline at the call', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const errors: unknown[] = []
  app.ws('/bad', (socket) => {
    for (const bad of [Number.NaN, -1, '2030-01-01', Infinity]) {
      try { socket.expireAt(bad as never) } catch (err) { errors.push((err as { code: string }).code) }
    }
    socket.close()
  })
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/bad`)
  await clientClosed(client)
  t.same(errors, Array(4).fill('FST_ERR_WS_INVALID_DEADLINE'))
})
