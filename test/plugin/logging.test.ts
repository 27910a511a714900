// What an upgrade writes to the app's log (pino lines captured from the logger's stream): the
// request log completes with 101, and each connection ends with one `websocket closed` line
// naming the route pattern, the code, the reason and who closed it.
import t from 'tap'
import { once } from 'node:events'
import Fastify, { LogController } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket from '../../lib/index.js'
import { close, encodeFrame, expectClose, Op, RawWebSocket } from '../helpers/raw-client.js'
import { deadline, logCapture, until } from './helpers.js'

type Line = Record<string, any>

async function listening (app: ReturnType<typeof Fastify>): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

function openClient (url: string): Promise<WsClient> {
  const ws = new WsClient(url)
  return deadline(new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('error', reject) }), 'the client to open')
}

/** The lines of one request, by its reqId. */
function linesOf (lines: Line[], reqId: string): string[] {
  return lines.filter((l) => l.reqId === reqId).map((l) => l.msg)
}

t.test('an upgrade completes its request log with 101; the close line names the route, code, reason, who closed', async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/chat/:room', (socket) => { socket.on('message', (data: Buffer) => socket.send(data.toString())) })
  const port = await listening(app)

  const client = await openClient(`ws://127.0.0.1:${port}/chat/lobby?token=s3cret`)
  client.send('hello')
  await once(client, 'message')
  client.close(1000, 'bye')
  await once(client, 'close')
  await until(() => logs.lines.some((l) => l.msg === 'websocket closed'), 'the close line')

  const incoming = logs.lines.find((l) => l.msg === 'incoming request')!
  const completed = logs.lines.find((l) => l.msg === 'request completed')
  t.match(completed, { level: 30, reqId: incoming.reqId, res: { statusCode: 101 }, responseTime: Number })
  const closedLine = logs.lines.find((l) => l.msg === 'websocket closed')
  t.match(closedLine, {
    level: 30,
    reqId: incoming.reqId,
    route: '/chat/:room',
    code: 1000,
    reason: 'bye',
    wasClean: true,
    closedBy: 'client',
    durationMs: Number,
    bytesRead: Number,
    bytesWritten: Number
  })
  t.ok(closedLine!.bytesRead > 0 && closedLine!.bytesWritten > 0, 'the socket counters')
  t.notOk(JSON.stringify(closedLine).includes('s3cret'), 'the close line carries the route pattern, not the URL')
  t.same(linesOf(logs.lines, incoming.reqId), ['incoming request', 'request completed', 'websocket closed'], 'one completion, one close line')
})

t.test('closedBy: client, server, protocol-error, heartbeat, shutdown; onClose hooks get it too', async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(websocket)
  const hookSaw: string[] = []
  app.addWebSocketHook('onClose', (_socket, request, info) => { hookSaw.push(`${request.url} ${info.closedBy}`) })
  app.ws('/server-closes', (socket) => { socket.close(4000, 'done') })
  app.ws('/server-terminates', (socket) => { socket.on('message', () => socket.terminate()) })
  app.ws('/open', () => {})
  app.ws('/heartbeat', { heartbeatInterval: 20 }, () => {})
  const port = await listening(app)
  const closeLine = async (url: string): Promise<Line> => {
    await until(() => hookSaw.some((h) => h.startsWith(`${url} `)), `the close of ${url}`)
    const reqId = logs.lines.find((l) => l.msg === 'incoming request' && l.req.url === url)!.reqId
    return logs.lines.find((l) => l.msg === 'websocket closed' && l.reqId === reqId)!
  }

  const byServer = await openClient(`ws://127.0.0.1:${port}/server-closes`)
  t.same((await once(byServer, 'close')).slice(0, 1), [4000])
  t.match(await closeLine('/server-closes'), { route: '/server-closes', code: 4000, reason: 'done', closedBy: 'server', wasClean: true })

  const terminated = await openClient(`ws://127.0.0.1:${port}/server-terminates`)
  terminated.send('x')
  await once(terminated, 'close')
  t.match(await closeLine('/server-terminates'), { code: 1006, closedBy: 'server', wasClean: false })

  // RFC 6455 §5.1: an unmasked client frame fails the connection
  const violator = await RawWebSocket.connect(port, '/open?n=1')
  await violator.send(encodeFrame({ opcode: Op.Text, payload: 'x', mask: null }))
  t.same(await violator.rest(), [expectClose(1002)])
  t.match(await closeLine('/open?n=1'), { route: '/open', code: 1002, closedBy: 'protocol-error', error: 'WS_ERR_UNMASKED_FRAME' })

  // a peer that ends TCP without a Close frame
  const leaver = await RawWebSocket.connect(port, '/open?n=2')
  leaver.socket.end()
  t.match(await closeLine('/open?n=2'), { code: 1006, closedBy: 'client', wasClean: false })

  // a peer that never answers the heartbeat's Ping (this raw client sends no Pong)
  await RawWebSocket.connect(port, '/heartbeat')
  t.match(await closeLine('/heartbeat'), { code: 1006, closedBy: 'heartbeat' })

  const last = await RawWebSocket.connect(port, '/open?n=3')
  await until(() => app.websocketConnections.size === 1, 'one open connection')
  const closing = app.close()
  t.same(await last.next(), [expectClose(1001)])
  await last.send(close(1001))
  await closing
  t.match(await closeLine('/open?n=3'), { code: 1001, closedBy: 'shutdown' })

  t.same(hookSaw.sort(), [
    '/heartbeat heartbeat',
    '/open?n=1 protocol-error',
    '/open?n=2 client',
    '/open?n=3 shutdown',
    '/server-closes server',
    '/server-terminates server'
  ])
})

t.test("Fastify's request-logging switch applies to the upgrade's completion line", async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { stream: logs.stream }, logController: new LogController({ disableRequestLogging: true }) })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/quiet', () => {})
  const client = await app.injectWS('/quiet')
  client.close(1000)
  await until(() => logs.lines.some((l) => l.msg === 'websocket closed'), 'the close line')
  t.same(logs.lines.map((l) => l.msg), ['websocket closed'], 'no incoming/completed lines, the connection line stays')
})

t.test('a refused upgrade completes its request log once, with its status', async (t) => {
  const logs = logCapture()
  const app = Fastify({ logger: { stream: logs.stream } })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.addHook('onRequest', async (_request, reply) => reply.code(401).send({ error: 'no' }))
  app.ws('/guarded', () => {})
  await t.rejects(app.injectWS('/guarded'), { name: 'WebSocketUpgradeError', statusCode: 401 })
  await until(() => logs.lines.some((l) => l.msg === 'request completed'), 'the completion line')
  t.match(logs.lines.filter((l) => l.msg === 'request completed'), [{ res: { statusCode: 401 } }])
})

t.test("the README's serializer keeps a query-string token out of every log line", async (t) => {
  const logs = logCapture()
  const app = Fastify({
    logger: {
      stream: logs.stream,
      serializers: {
        // the path without its query string (where browsers put a WebSocket token)
        req (request) {
          return { method: request.method, url: request.url?.split('?')[0] }
        }
      }
    }
  })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/feed', () => {})
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/feed?token=s3cret`)
  client.close(1000)
  await once(client, 'close')
  await until(() => logs.lines.some((l) => l.msg === 'websocket closed'), 'the close line')
  t.match(logs.lines.find((l) => l.msg === 'incoming request'), { req: { method: 'GET', url: '/feed' } })
  t.same(logs.lines.filter((l) => JSON.stringify(l).includes('s3cret')), [], 'no line carries the token')
})
