// Inbound budgets and the per-address connection limit: a flood from one client is cut at its
// budget while its neighbours are untouched; excess connections from one address get 429.
import t from 'tap'
import { once } from 'node:events'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { logCapture, until } from '../plugin/helpers.js'
import { clientClosed, listening, openClient, refusedStatus } from './helpers.js'

t.test('a flood is closed with 1008 at its message budget; a neighbour is untouched', async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(websocket)
  const seen = new Map<string, number>()
  app.ws('/chat', { inboundBudget: { messagesPerSecond: 5 } }, (socket, request) => {
    const who = (request.query as { who: string }).who
    socket.on('message', () => seen.set(who, (seen.get(who) ?? 0) + 1))
  })
  const port = await listening(app)
  const flooder = await openClient(`ws://127.0.0.1:${port}/chat?who=flooder`)
  const neighbour = await openClient(`ws://127.0.0.1:${port}/chat?who=neighbour`)
  const flooded = clientClosed(flooder)
  for (let i = 0; i < 1000; i++) flooder.send('spam')
  t.same(await flooded, { code: 1008, reason: 'over budget' })
  // the bucket held 5 tokens (burst 1 s x 5/s): at most those and what the clock refilled passed
  t.ok((seen.get('flooder') ?? 0) < 1000, 'the flood was cut')
  t.ok((seen.get('flooder') ?? 0) >= 5, 'the burst passed')

  neighbour.send('hello')
  await until(() => seen.get('neighbour') === 1, 'the neighbour\'s message')
  t.equal(neighbour.readyState, neighbour.OPEN, 'the neighbour stays open')
  await until(() => logs.lines.some((l) => l.msg === 'websocket closed'), 'the close line')
  t.match(logs.lines.find((l) => l.msg === 'websocket closed'), { code: 1008, closedBy: 'budget', route: '/chat' })
  neighbour.close()
})

t.test('a byte budget with policy drop drops and reports, the connection stays open', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const over: Array<[number, string]> = []
  let got = 0
  app.ws('/up', { inboundBudget: { bytesPerSecond: 1000, policy: 'drop' } }, (socket) => {
    socket.on('budgetExceeded', (size: number, error: Error & { code?: string }) => {
      over.push([size, error.code!])
      if (over.length === 1) socket.send('slow down')
    })
    socket.on('message', () => { got++ })
  })
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/up`)
  const warned = once(client, 'message')
  for (let i = 0; i < 20; i++) client.send(Buffer.alloc(400))
  t.equal(String((await warned)[0]), 'slow down')
  t.ok(got >= 2 && got < 20, `some passed, the rest was dropped (${got} passed)`)
  t.same(over[0], [400, 'WS_ERR_BUDGET_EXCEEDED'])
  t.equal(client.readyState, client.OPEN)
  t.ok(app.websocketMetrics().routes['/up'].drops >= 1, 'drops are counted')
  client.close()
})

t.test('inboundBudget options are checked at registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(websocket, { inboundBudget: { messagesPerSecond: -1 } })
  await t.rejects(async () => await app.ready(), { code: 'FST_ERR_WS_INVALID_OPTION' })
  const app2 = Fastify()
  t.teardown(() => app2.close())
  app2.register(websocket, { inboundBudget: { policy: 'ignore' } } as never)
  await t.rejects(async () => await app2.ready(), { code: 'FST_ERR_WS_INVALID_OPTION' })
})

t.test('maxConnectionsPerAddress answers 429 before the upgrade', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { maxConnectionsPerAddress: 2 })
  app.ws('/a', () => {})
  app.ws('/b', () => {})
  const port = await listening(app)
  const one = await openClient(`ws://127.0.0.1:${port}/a`)
  const two = await openClient(`ws://127.0.0.1:${port}/b`)
  const refused = await refusedStatus(`ws://127.0.0.1:${port}/a`)
  t.equal(refused.status, 429)
  t.match(JSON.parse(refused.body), { code: 'WS_ERR_TOO_MANY_CONNECTIONS_PER_ADDRESS' })
  t.same(app.websocketMetrics().total.refused, { WS_ERR_TOO_MANY_CONNECTIONS_PER_ADDRESS: 1 })
  // a closed connection frees its place
  one.close()
  await until(() => app.websocketConnections.size === 1, 'the close')
  const three = await openClient(`ws://127.0.0.1:${port}/a`)
  t.equal(three.readyState, three.OPEN, 'a closed connection freed its place')
  two.close()
  three.close()
})
