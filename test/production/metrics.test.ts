// app.websocketMetrics(): per route pattern and in total, what the connections did.
import t from 'tap'
import { once } from 'node:events'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { until } from '../plugin/helpers.js'
import { clientClosed, listening, openClient, refusedStatus } from './helpers.js'

t.test('the snapshot counts connections, messages, bytes, close codes and compression per route', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { allowedOrigins: ['https://ok.example'] })
  app.ws('/echo/:id', (socket) => { socket.on('message', (data, binary) => socket.send(binary ? data : data.toString())) })
  app.ws('/zip', { perMessageDeflate: true }, (socket) => { socket.on('message', () => socket.send('ok')) })
  const port = await listening(app)
  t.same(app.websocketMetrics(), { total: { open: 0, opened: 0, closed: 0, messagesIn: 0, messagesOut: 0, payloadBytesIn: 0, payloadBytesOut: 0, bytesIn: 0, bytesOut: 0, closeCodes: {}, closedBy: {}, drops: 0, refused: {}, compressionRatio: null }, routes: {} })

  const a = await openClient(`ws://127.0.0.1:${port}/echo/1`)
  const b = await openClient(`ws://127.0.0.1:${port}/echo/2`)
  a.send('hello')
  await once(a, 'message')
  b.send(Buffer.alloc(100), { binary: true })
  await once(b, 'message')
  b.close(4001, 'bye')
  await clientClosed(b)
  const zip = await openClient(`ws://127.0.0.1:${port}/zip`, { perMessageDeflate: { threshold: 0 } })
  zip.send('a'.repeat(4096))
  await once(zip, 'message')
  await refusedStatus(`ws://127.0.0.1:${port}/zip`, { origin: 'https://evil.example' })
  await until(() => app.websocketMetrics().total.closed === 1, 'the close')

  const { total, routes } = app.websocketMetrics()
  t.match(routes['/echo/:id'], { open: 1, opened: 2, closed: 1, messagesIn: 2, messagesOut: 2, payloadBytesIn: 105, payloadBytesOut: 105, closeCodes: { 4001: 1 }, closedBy: { client: 1 }, drops: 0, compressionRatio: null })
  t.ok(routes['/echo/:id'].bytesIn > 105 && routes['/echo/:id'].bytesOut > 105, 'wire bytes include frames and handshakes')
  t.match(routes['/zip'], { open: 1, opened: 1, messagesIn: 1, payloadBytesIn: 4096, refused: { WS_ERR_ORIGIN_FORBIDDEN: 1 } })
  t.ok(routes['/zip'].compressionRatio! > 0 && routes['/zip'].compressionRatio! < 0.1, `4 KiB of one letter compresses (ratio ${routes['/zip'].compressionRatio})`)
  t.match(total, { open: 2, opened: 3, closed: 1, messagesIn: 3, messagesOut: 3, closeCodes: { 4001: 1 }, refused: { WS_ERR_ORIGIN_FORBIDDEN: 1 } })
  t.equal(total.bytesIn, routes['/echo/:id'].bytesIn + routes['/zip'].bytesIn)
  t.equal(total.compressionRatio, routes['/zip'].compressionRatio)
  a.close()
  zip.close()
})
