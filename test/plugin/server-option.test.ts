// The `server` plugin option: the app also serves the upgrade requests of another HTTP server
// (one listener there too), closes those connections on app.close() and leaves that server
// without its listener; a server already served by another app is refused with a code.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import Fastify from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'
import { deadline, message } from './helpers.js'
import { clientClosed, open, roundTrip } from './ws-clients.js'

function echo (socket: WebSocket): void {
  socket.on('message', (data: Buffer) => socket.send(data.toString()))
}

async function listening (server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as { port: number }).port
}

t.test('server: upgrades on another HTTP server go through the app\'s routes; close gives them 1001', async (t) => {
  const app = Fastify()
  // the other server hands its plain requests to the app too, as a user's own server would
  const other = createServer((req, res) => { app.routing(req, res) })
  t.teardown(() => new Promise<void>((resolve) => other.close(() => resolve())))
  await app.register(websocket, { server: other })
  app.ws('/echo', echo)
  await app.ready()
  const port = await listening(other)

  t.equal(other.listenerCount('upgrade'), 1, 'one listener on the other server')
  t.equal(app.server.listenerCount('upgrade'), 1, 'and one on the app\'s own server')
  const client = await open(`ws://127.0.0.1:${port}/echo`)
  t.same(await roundTrip(client, 'over the other server'), { echo: 'over the other server' })
  t.equal(app.websocketConnections.size, 1)

  // the app's own server still upgrades (injectWS goes through it)
  const injected = await app.injectWS('/echo')
  injected.send('injected')
  t.equal(await message(injected), 'injected')

  const closed = clientClosed(client)
  await deadline(app.close(), 'app.close() to resolve')
  t.equal((await closed).code, 1001)
  t.equal(other.listenerCount('upgrade'), 0, 'the listener is removed from the other server on close')
})

t.test('server: a server whose upgrades another app already routes is refused', async (t) => {
  const first = Fastify()
  t.teardown(() => first.close())
  await first.register(websocket)
  const second = Fastify()
  t.teardown(() => second.close())
  let error: (Error & { code?: string }) | undefined
  try {
    await second.register(websocket, { server: first.server })
  } catch (err) {
    error = err as Error & { code?: string }
  }
  t.equal(error?.code, 'FST_ERR_WS_SERVER_IN_USE')
  t.equal(first.server.listenerCount('upgrade'), 1, 'still one listener on the shared server')
  t.equal(second.server.listenerCount('upgrade'), 0, 'nothing added when refused')
})
