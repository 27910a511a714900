// The diagnostics channels: a subscriber on each sees the documented payload.
import t from 'tap'
import { once } from 'node:events'
import Fastify from 'fastify'
import websocket, { WebSocket } from '../../lib/index.js'
import { RawWebSocket } from '../helpers/raw-client.js'
import { until } from '../plugin/helpers.js'
import { capture, clientClosed, listening, openClient, refusedStatus } from './helpers.js'

t.test('open, message:received, message:sent, close carry route, sizes and counts', async (t) => {
  const opened = capture(t, 'fastify-rfc6455:open')
  const received = capture(t, 'fastify-rfc6455:message:received')
  const sent = capture(t, 'fastify-rfc6455:message:sent')
  const closedMessages = capture(t, 'fastify-rfc6455:close')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  let server: WebSocket | undefined
  app.ws('/echo/:room', (socket) => {
    server = socket
    socket.on('message', (data: Buffer, binary: boolean) => socket.send(binary ? data : data.toString()))
  })
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/echo/a?token=x`)
  client.send('hello')
  await once(client, 'message')
  client.send(Buffer.alloc(10), { binary: true })
  await once(client, 'message')
  client.close(1000, 'bye')
  await clientClosed(client)
  await until(() => closedMessages.length === 1, 'the close message')

  t.match(opened, [{ socket: server, route: '/echo/:room', protocol: '', extensions: '', request: { url: '/echo/a?token=x' } }])
  t.match(received, [
    { socket: server, route: '/echo/:room', size: 5, wireSize: 5, binary: false, compressed: false },
    { socket: server, route: '/echo/:room', size: 10, wireSize: 10, binary: true, compressed: false }
  ])
  t.match(sent, [{ route: '/echo/:room', size: 5, binary: false }, { route: '/echo/:room', size: 10, binary: true }])
  t.match(closedMessages[0], {
    socket: server, route: '/echo/:room', code: 1000, reason: 'bye', wasClean: true, closedBy: 'client',
    durationMs: Number, bytesRead: Number, bytesWritten: Number, messagesIn: 2, messagesOut: 2
  })
})

t.test('upgrade:refused carries status and code', async (t) => {
  const refused = capture(t, 'fastify-rfc6455:upgrade:refused')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { allowedOrigins: ['https://good.example'] })
  app.ws('/r', () => {})
  const port = await listening(app)
  const { status } = await refusedStatus(`ws://127.0.0.1:${port}/r`, { origin: 'https://evil.example' })
  t.equal(status, 403)
  t.match(refused, [{ route: '/r', statusCode: 403, code: 'WS_ERR_ORIGIN_FORBIDDEN', request: { url: '/r' } }])
})

t.test('backpressure: a message dropped over maxBufferedAmount', async (t) => {
  const backpressure = capture(t, 'fastify-rfc6455:backpressure')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const dropped: number[] = []
  app.ws('/slow', { maxBufferedAmount: 1024, bufferedAmountPolicy: 'drop' }, (socket) => {
    socket.on('dropped', (size: number) => dropped.push(size))
    // the client is paused: what does not fit the buffer is dropped
    for (let i = 0; i < 64 && dropped.length === 0; i++) socket.send(Buffer.alloc(4096))
  })
  const port = await listening(app)
  const raw = await RawWebSocket.connect(port, '/slow')
  t.teardown(() => raw.destroy())
  await until(() => dropped.length > 0, 'a drop')
  t.match(backpressure[0], { route: '/slow', size: 4096, reason: 'buffer', action: 'drop', socket: WebSocket })
  t.equal(app.websocketMetrics().routes['/slow'].drops, dropped.length)
})

t.test('heartbeat:timeout and error', async (t) => {
  const timeouts = capture(t, 'fastify-rfc6455:heartbeat:timeout')
  const errors = capture(t, 'fastify-rfc6455:error')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/hb', { heartbeatInterval: 20 }, () => {})
  app.ws('/throws', (socket) => { socket.on('message', () => { throw new Error('boom') }) })
  const port = await listening(app)
  // this raw client never answers the heartbeat's Ping
  const raw = await RawWebSocket.connect(port, '/hb')
  t.teardown(() => raw.destroy())
  await until(() => timeouts.length === 1, 'the heartbeat timeout')
  t.match(timeouts, [{ route: '/hb', socket: WebSocket }])

  const client = await openClient(`ws://127.0.0.1:${port}/throws`)
  client.send('x')
  t.equal((await clientClosed(client)).code, 1011)
  t.match(errors, [{ route: '/throws', error: { message: 'boom' }, socket: WebSocket }])
})

t.test('a protocol failure is published on error with its code', async (t) => {
  const errors = capture(t, 'fastify-rfc6455:error')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/p', () => {})
  const port = await listening(app)
  const raw = await RawWebSocket.connect(port, '/p')
  t.teardown(() => raw.destroy())
  // RFC 6455 §5.1: an unmasked client frame fails the connection with 1002
  await raw.send(Buffer.from([0x81, 0x01, 0x61]))
  await until(() => errors.length === 1, 'the error message')
  t.match(errors, [{ route: '/p', error: { closeCode: 1002 } }])
})
