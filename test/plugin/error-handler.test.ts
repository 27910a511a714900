// The errorHandler receives the errors of an established connection (as @fastify/websocket 11.3
// passes its socket's 'error' events): a protocol violation by the peer with its WS_ERR_* code,
// a reset with WS_ERR_CONNECTION_RESET. Real TCP, a raw client that misbehaves on purpose.
import t from 'tap'
import Fastify, { type FastifyRequest } from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'
import { encodeFrame, expectClose, Op, RawWebSocket, text } from '../helpers/raw-client.js'
import { deadline, logCapture, until } from './helpers.js'

interface Reported { error: any, socket: WebSocket, request: FastifyRequest, self: unknown }

function recorder (): { reported: Reported[], next: () => Promise<Reported>, errorHandler: (this: unknown, error: unknown, socket: WebSocket, request: FastifyRequest) => void } {
  const reported: Reported[] = []
  let wake: (() => void) | null = null
  return {
    reported,
    errorHandler (error, socket, request) {
      reported.push({ error, socket, request, self: this })
      wake?.()
    },
    next () {
      return deadline(new Promise<Reported>((resolve) => {
        const check = (): void => { if (reported.length > 0) resolve(reported.shift()!); else wake = check }
        check()
      }), 'the errorHandler')
    }
  }
}

async function start (options: Parameters<typeof websocket>[1] = {}, logs = logCapture()) {
  const app = Fastify({ logger: { level: 'debug', stream: logs.stream } })
  await app.register(websocket, options)
  const sockets: WebSocket[] = []
  app.ws('/ws', (socket) => { sockets.push(socket) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, port, sockets, logs }
}

t.test('a protocol violation reaches the errorHandler with its code, and still closes with its close code', async (t) => {
  const record = recorder()
  const { app, port, sockets } = await start({ errorHandler: record.errorHandler })
  t.teardown(() => app.close())
  const client = await RawWebSocket.connect(port, '/ws?room=1')
  // RFC 6455 §5.1: "The server MUST close the connection upon receiving a frame that is not masked."
  await client.send(encodeFrame({ opcode: Op.Text, payload: 'unmasked', mask: null }))
  const { error, socket, request, self } = await record.next()
  t.match(error, { name: 'ProtocolError', code: 'WS_ERR_UNMASKED_FRAME', closeCode: 1002 })
  t.equal(socket, sockets[0], 'the server socket of the connection')
  t.equal(request.url, '/ws?room=1', 'and its request')
  t.equal(self, app, 'this is the route\'s Fastify instance')
  t.same(await client.rest(), [expectClose(1002)], 'the wire result is unchanged')
})

t.test('a reset reaches the errorHandler as WS_ERR_CONNECTION_RESET, its cause the ECONNRESET', async (t) => {
  const record = recorder()
  const { app, port } = await start({ errorHandler: record.errorHandler })
  t.teardown(() => app.close())
  const client = await RawWebSocket.connect(port, '/ws')
  await until(() => app.websocketConnections.size === 1, 'the server connection')
  const [server] = app.websocketConnections
  const closedOnServer = new Promise<number>((resolve) => server.once('close', (code: number) => resolve(code)))
  client.socket.resetAndDestroy()
  const { error, socket } = await record.next()
  t.match(error, { name: 'TransportError', code: 'WS_ERR_CONNECTION_RESET', closeCode: 1006 })
  t.match(error.cause, { code: 'ECONNRESET' })
  t.equal(socket, server)
  t.equal(await deadline(closedOnServer, 'close'), 1006)
})

t.test("a route's errorHandler takes the place of the plugin's; one that throws is logged, nothing crashes", async (t) => {
  const pluginLevel = recorder()
  const routeLevel = recorder()
  const logs = logCapture()
  const app = Fastify({ logger: { level: 'debug', stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(websocket, { errorHandler: pluginLevel.errorHandler })
  app.ws('/route', { ws: { errorHandler: routeLevel.errorHandler } }, () => {})
  app.ws('/throws', { ws: { errorHandler: () => { throw new Error('handler of errors failed') } } }, () => {})
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }

  const client = await RawWebSocket.connect(port, '/route')
  // RFC 6455 §5.2: RSV1 set with no extension negotiated
  await client.send(text('x', { rsv: 4 }))
  t.match((await routeLevel.next()).error, { code: 'WS_ERR_RESERVED_BITS' })
  t.same(await client.rest(), [expectClose(1002)])
  t.equal(pluginLevel.reported.length, 0)

  const other = await RawWebSocket.connect(port, '/throws')
  await other.send(encodeFrame({ opcode: Op.Ping, payload: 'x'.repeat(126) }))
  t.same(await other.rest(), [expectClose(1002)], 'a control frame over 125 bytes')
  await until(() => logs.lines.some((l) => l.msg === 'websocket errorHandler threw'), 'the log line')
  t.match(logs.lines.find((l) => l.msg === 'websocket errorHandler threw'), { level: 50, err: { message: 'handler of errors failed' } })
})

t.test('without an errorHandler, peer misbehaviour logs nothing at warn or error level', async (t) => {
  const { app, port, logs } = await start()
  t.teardown(() => app.close())
  const violator = await RawWebSocket.connect(port, '/ws')
  await violator.send(encodeFrame({ opcode: Op.Binary, payload: 'x', mask: null }))
  t.same(await violator.rest(), [expectClose(1002)])
  const resetter = await RawWebSocket.connect(port, '/ws')
  await until(() => app.websocketConnections.size === 1, 'the second connection')
  resetter.socket.resetAndDestroy()
  await until(() => logs.lines.filter((l) => l.msg === 'websocket closed').length === 2, 'two close lines')
  t.same(logs.lines.filter((l) => l.level >= 40), [], 'no warn or error line')
  const closeLines = logs.lines.filter((l) => l.msg === 'websocket closed')
  t.match(closeLines.find((l) => l.code === 1002), { level: 30, error: 'WS_ERR_UNMASKED_FRAME' })
  t.match(closeLines.find((l) => l.code === 1006), { level: 30, wasClean: false })
})

t.test('a clean close calls no errorHandler', async (t) => {
  const record = recorder()
  const { app, port } = await start({ errorHandler: record.errorHandler })
  t.teardown(() => app.close())
  const client = await RawWebSocket.connect(port, '/ws')
  t.same(await client.closeAndRest(1000), [expectClose(1000)])
  await client.waitClosed()
  await until(() => app.websocketConnections.size === 0, 'the server side to close')
  t.same(record.reported, [])
})
