// Another 'upgrade' listener on the same server (a legacy handler, a `ws` server sharing the port)
// that takes the socket before the plugin does: the server never crashes, the other listener's
// answer is the only one on the wire, and a socket left with a finished HTTP answer is closed.
import t from 'tap'
import { type IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import type { Duplex } from 'node:stream'
import Fastify from 'fastify'
import { WebSocket as WsClient, WebSocketServer } from 'ws'
import websocket, { type WebSocket } from '../../lib/index.js'
import { deadline, rawRequest, upgradeRequest } from '../plugin/helpers.js'
import { count, maskedText, open, roundTrip } from '../plugin/ws-clients.js'

async function appWithForeignListener (foreign: (req: IncomingMessage, socket: Duplex, head: Buffer) => void) {
  const app = Fastify()
  // added before the plugin registers: it runs first
  app.server.on('upgrade', foreign)
  await app.register(websocket)
  app.ws('/echo', (socket: WebSocket) => { socket.on('message', (data: Buffer) => socket.send(data.toString())) })
  app.get('/health', async () => 'ok')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, port }
}

function answer403 (req: IncomingMessage, socket: Duplex): void {
  const response = new ServerResponse(req)
  response.assignSocket(socket as never)
  response.writeHead(403, { 'content-type': 'text/plain', 'content-length': '14' })
  response.end('legacy says no')
}

t.test('a listener that answers with its own ServerResponse (ERR_HTTP_SOCKET_ASSIGNED): no crash, its answer only, socket closed', async (t) => {
  const { app, port } = await appWithForeignListener((req, socket) => {
    if (req.url === '/legacy') answer403(req, socket)
  })
  t.teardown(() => app.close())

  const reply = await rawRequest(port, upgradeRequest('/legacy'))
  t.match(reply, /^HTTP\/1\.1 403 Forbidden\r\n/)
  t.equal(count(Buffer.from(reply, 'latin1'), 'HTTP/1.1'), 1, 'one response on the wire')
  t.match(reply, /legacy says no$/)

  // the server is alive and still upgrades the plugin's routes
  const client = await open(`ws://127.0.0.1:${port}/echo`)
  t.same(await roundTrip(client, 'still here'), { echo: 'still here' })
  client.close()
})

t.test('a listener that answers later, on the next turn: the socket is closed once its answer is complete', async (t) => {
  const { app, port } = await appWithForeignListener((req, socket) => {
    if (req.url !== '/later') return
    const response = new ServerResponse(req)
    response.assignSocket(socket as never)
    setImmediate(() => {
      response.writeHead(401, { 'content-length': '0' })
      response.end()
    })
  })
  t.teardown(() => app.close())
  const reply = await rawRequest(port, upgradeRequest('/later'))
  t.match(reply, /^HTTP\/1\.1 401 Unauthorized\r\n/)
  t.equal(count(Buffer.from(reply, 'latin1'), 'HTTP/1.1'), 1)
})

t.test('a listener that writes raw bytes and ends the socket: nothing else is written', async (t) => {
  const { app, port } = await appWithForeignListener((req, socket) => {
    if (req.url === '/teapot') socket.end('HTTP/1.1 418 I\'m a Teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  })
  t.teardown(() => app.close())
  const reply = await rawRequest(port, upgradeRequest('/teapot'))
  t.equal(reply, 'HTTP/1.1 418 I\'m a Teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
})

t.test('a `ws` server sharing the port keeps its own connections intact', async (t) => {
  const wss = new WebSocketServer({ noServer: true })
  const { app, port } = await appWithForeignListener((req, socket, head) => {
    if (req.url === '/ws-lib') wss.handleUpgrade(req, socket, head, (client) => { client.send('from ws') })
  })
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    await app.close()
  })
  const client = new WsClient(`ws://127.0.0.1:${port}/ws-lib`)
  const first = await deadline(new Promise<string>((resolve, reject) => {
    client.once('message', (data: Buffer) => resolve(data.toString()))
    client.once('error', reject)
  }), 'the ws server\'s message')
  t.equal(first, 'from ws')
  // a second message proves the stream was not corrupted by another response
  t.same(await deadline(new Promise((resolve, reject) => {
    wss.clients.forEach((c) => c.send('again'))
    client.once('message', (data: Buffer) => resolve(data.toString()))
    client.once('error', reject)
  }), 'the second message'), 'again')
  client.close()
  const ours = await open(`ws://127.0.0.1:${port}/echo`)
  t.same(await roundTrip(ours, 'ours'), { echo: 'ours' })
  ours.close()
})

t.test('an upgrade after a keep-alive request on the same connection is still served', async (t) => {
  // no foreign listener here: bytes written earlier on the connection are not another listener's
  const { app, port } = await appWithForeignListener(() => {})
  t.teardown(() => app.close())
  const bytes = await deadline(new Promise<Buffer>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n'))
    let received = Buffer.alloc(0)
    let upgraded = false
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      if (!upgraded && received.includes('\r\n\r\nok')) {
        upgraded = true
        socket.write(upgradeRequest('/echo'))
        socket.write(maskedText('after keep-alive'))
      }
      if (received.includes('after keep-alive')) { socket.destroy(); resolve(received) }
    })
    socket.on('error', reject)
  }), 'the keep-alive answer, then the echo')
  t.match(bytes.toString('latin1'), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nokHTTP\/1\.1 101 Switching Protocols\r\n/)
})
