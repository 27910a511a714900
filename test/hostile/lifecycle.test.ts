// Abrupt ends (issue 5): a peer that resets mid-frame, half-open TCP, a silent peer, writes
// after close. Cleanup happens exactly once, nothing is unhandled, nothing logs at error level,
// and the server keeps serving.
import { once } from 'node:events'
import net from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { WebSocket } from '../../lib/index.js'
import { assertServes, clientFrame, deadline, rawWebSocket, server } from './helpers.js'

interface Seen { socket: WebSocket, closes: Array<[number, boolean]>, lateSend: boolean | undefined, lateError: string | undefined }

function tracked (app: FastifyInstance, seen: Seen[], routeOptions: Record<string, unknown> = {}): void {
  app.ws('/echo', (socket) => { socket.on('message', (d: Buffer, b: boolean) => socket.send(b ? d : d.toString())) })
  app.ws('/tracked', routeOptions, (socket) => {
    const entry: Seen = { socket, closes: [], lateSend: undefined, lateError: undefined }
    seen.push(entry)
    socket.on('message', (d: Buffer) => socket.send(d))
    socket.on('close', (code: number, _reason: Buffer, wasClean: boolean) => {
      entry.closes.push([code, wasClean])
      // writes after close: refused quietly
      entry.lateSend = socket.send('too late', (err) => { entry.lateError = (err as Error & { code?: string } | null)?.code })
      socket.ping()
      socket.close(1000)
    })
  })
}

async function closedOnce (t: Test, app: FastifyInstance, entry: Seen): Promise<void> {
  await deadline(new Promise<void>((resolve) => { const c = (): void => { if (entry.closes.length > 0) resolve(); else setImmediate(c) }; c() }), 5000, 'close')
  await new Promise<void>((resolve) => setImmediate(resolve))
  t.equal(entry.closes.length, 1, "'close' exactly once")
  t.equal(entry.lateSend, false, 'send() after close returns false')
  await deadline(new Promise<void>((resolve) => { const c = (): void => { if (entry.lateError !== undefined) resolve(); else setImmediate(c) }; c() }), 1000, 'the late callback')
  t.equal(entry.lateError, 'FST_ERR_WS_NOT_OPEN')
  t.equal(app.websocketConnections.size, 0, 'no connection left in the registry')
}

t.test('a peer that resets in the middle of a frame', async (t) => {
  const seen: Seen[] = []
  const { app, port, log } = await server({}, (app) => tracked(app, seen))
  t.teardown(() => app.close())
  const client = await rawWebSocket(port, '/tracked')
  const frame = clientFrame(0x2, Buffer.alloc(1000, 1))
  await new Promise<void>((resolve) => client.socket.write(frame.subarray(0, 500), () => resolve()))
  client.socket.resetAndDestroy()
  await closedOnce(t, app, seen[0])
  t.same(seen[0].closes[0], [1006, false])
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [], 'no error-level log')
})

t.test('half-open TCP: the peer sends FIN without a Close frame', async (t) => {
  const seen: Seen[] = []
  const { app, port, log } = await server({}, (app) => tracked(app, seen))
  t.teardown(() => app.close())
  const client = await rawWebSocket(port, '/tracked')
  client.write(clientFrame(0x1, 'before'))
  await client.waitFrames(1)
  client.socket.end() // half-close: we can still read
  await client.waitClosed()
  t.ok(client.ended, 'the server ended its side too')
  await closedOnce(t, app, seen[0])
  t.same(seen[0].closes[0], [1006, false])
  t.same(client.frames().map((f) => f.payload.toString()), ['before'], 'no frame after our FIN')
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('half-open TCP: a peer that vanished without FIN is found by the heartbeat', async (t) => {
  const seen: Seen[] = []
  const { app, port, log } = await server({}, (app) => tracked(app, seen, { heartbeatInterval: 30 }))
  t.teardown(() => app.close())
  const client = await rawWebSocket(port, '/tracked')
  // the client reads but never answers: as if its host had vanished
  await closedOnce(t, app, seen[0])
  t.same(seen[0].closes[0], [1006, false])
  t.equal(seen[0].socket.expiredBy, 'heartbeat')
  t.ok(client.frames().some((f) => f.opcode === 0x9), 'it was pinged first')
  await client.waitClosed()
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('a peer that resets right after its Close frame, and one that writes after closing', async (t) => {
  const seen: Seen[] = []
  const { app, port, log } = await server({}, (app) => tracked(app, seen))
  t.teardown(() => app.close())
  const a = await rawWebSocket(port, '/tracked')
  a.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])))
  a.socket.resetAndDestroy()
  await closedOnce(t, app, seen[0])
  const b = await rawWebSocket(port, '/tracked')
  b.write(Buffer.concat([clientFrame(0x8, Buffer.from([0x03, 0xe8])), clientFrame(0x1, 'after close'), clientFrame(0x2, Buffer.alloc(70_000))]))
  await b.waitClosed()
  await closedOnce(t, app, seen[1])
  t.same(seen[1].closes[0], [1000, true], 'data after the Close frame is ignored')
  t.same(b.frames().map((f) => f.opcode), [0x8], 'only the Close echo')
  t.equal(await assertServes(port), 'still alive')
  t.same(log.errors(), [])
})

t.test('server shutdown with connections mid-frame: each closes once, app.close() resolves', async (t) => {
  const seen: Seen[] = []
  const { app, port, log } = await server({ closeTimeout: 100 }, (app) => tracked(app, seen))
  const clients = await Promise.all(Array.from({ length: 5 }, () => rawWebSocket(port, '/tracked')))
  for (const c of clients) c.write(clientFrame(0x2, Buffer.alloc(100)).subarray(0, 50))
  // the clients never answer the 1001 Close: the close timeout ends them
  await deadline(app.close(), 10_000, 'app.close()')
  t.equal(seen.length, 5)
  for (const entry of seen) t.equal(entry.closes.length, 1)
  t.equal(app.websocketConnections.size, 0)
  t.same(log.errors(), [])
})

t.test('the peer ends its side but never reads our output: closeTimeout still destroys the socket', async (t) => {
  // an HTTP server's sockets allow half-open connections, so our end() waits behind the unread
  // output; with nothing pending the socket would close by itself and no timer is set
  const srv = net.createServer({ allowHalfOpen: true })
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1')
  const [serverSocket] = await accepted
  t.teardown(() => { client.destroy(); serverSocket.destroy(); srv.close() })
  client.pause() // never reads
  const ws = new WebSocket(serverSocket, { closeTimeout: 200, maxBufferedAmount: 64 * 1024 * 1024 })
  for (let i = 0; i < 16; i++) ws.send(Buffer.alloc(1024 * 1024))
  t.ok(ws.bufferedAmount > 0, 'output waits for the peer')
  const closed = once(ws, 'close')
  const started = Date.now()
  client.end() // FIN, still not reading
  await deadline(closed, 5000, "'close' after closeTimeout")
  t.ok(Date.now() - started >= 150, 'closed by the timer, not by the peer')
  t.ok(serverSocket.destroyed, 'the socket was destroyed')
})
