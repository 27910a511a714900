/**
 * WebSockets over HTTP/2 (RFC 8441) with `node:http2` as the client, over TLS (h2, with
 * allowHTTP1) and cleartext (h2c): the SETTINGS, the extended CONNECT handshake through
 * Fastify's router and hooks, frames of every size class, fragmentation, ping/pong, close,
 * refusals, and many WebSockets sharing one HTTP/2 connection with ordinary requests.
 */
import t from 'tap'
import { once } from 'node:events'
import http2 from 'node:http2'
import WS from 'ws'
import type { WebSocket } from '../../lib/index.js'
import { binary, close, encodeFrame, expectBinary, expectClose, expectPong, expectText, Op, RawWebSocket, text } from '../helpers/raw-client.js'
import { closed, deadline, type Closed } from '../plugin/helpers.js'
import { h2connect, h2request, startH2, type Transport } from './helpers.js'

const { NGHTTP2_CANCEL } = http2.constants

function echo (socket: WebSocket): void {
  socket.on('message', (data: Buffer, isBinary: boolean) => { socket.send(isBinary ? data : data.toString('utf8')) })
}

for (const transport of ['h2', 'h2c'] as Transport[]) {
  t.test(`${transport}: SETTINGS_ENABLE_CONNECT_PROTOCOL is advertised when a WebSocket route exists`, async (t) => {
    const server = await startH2(transport, (app) => { app.ws('/echo', echo) })
    t.teardown(server.close)
    const { session, settings } = await h2connect(server.origin)
    t.teardown(() => session.close())
    t.equal(settings.enableConnectProtocol, true)
  })

  t.test(`${transport}: not advertised without a WebSocket route`, async (t) => {
    const server = await startH2(transport, (app) => { app.get('/', async () => 'plain') })
    t.teardown(server.close)
    const { session, settings } = await h2connect(server.origin)
    t.teardown(() => session.close())
    t.not(settings.enableConnectProtocol, true)
    const response = await h2request(session, { ':path': '/' })
    t.equal(response.body, 'plain', 'ordinary requests are served')
  })

  t.test(`${transport}: extended CONNECT gets 200 without Sec-WebSocket-Accept, and frames of every size class echo`, async (t) => {
    const server = await startH2(transport, (app) => { app.ws('/echo', echo) })
    t.teardown(server.close)
    const { session } = await h2connect(server.origin)
    t.teardown(() => session.close())
    const c = await RawWebSocket.connectH2(session, '/echo')
    t.equal(c.status, 200)
    t.equal(c.headers['sec-websocket-accept'], undefined)
    t.equal(c.headers.upgrade, undefined, 'no Upgrade header (RFC 8441 §5: not part of HTTP/2)')
    t.equal(c.headers.connection, undefined)
    const expected = []
    for (const length of [0, 1, 125, 126, 127, 128, 65535, 65536, 200_000]) {
      const payload = Buffer.alloc(length)
      for (let i = 0; i < length; i++) payload[i] = (i * 31) & 0xff
      await c.send(binary(payload))
      await c.send(text('é'.repeat(length >> 1)))
      expected.push(expectBinary(payload), expectText('é'.repeat(length >> 1)))
    }
    t.same(await c.next(expected.length), expected)
    t.same(await c.closeAndRest(), [expectClose(1000)], 'close echoed, then END_STREAM')
  })
}

t.test('fragmented messages, ping/pong and the closing handshake over a stream', async (t) => {
  const closes: Closed[] = []
  const server = await startH2('h2', (app) => {
    app.ws('/echo', (socket) => { echo(socket); void closed(socket).then((c) => closes.push(c)) })
  })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const c = await RawWebSocket.connectH2(session, '/echo')
  await c.send(encodeFrame({ opcode: Op.Text, payload: 'frag', fin: false }))
  await c.send(encodeFrame({ opcode: Op.Ping, payload: 'in between' }))
  await c.send(encodeFrame({ opcode: Op.Continuation, payload: 'men', fin: false }))
  await c.send(encodeFrame({ opcode: Op.Continuation, payload: 'ted' }))
  t.same(await c.next(2), [expectPong('in between'), expectText('fragmented')])
  await c.send(close(1000, 'bye'))
  t.same(await c.rest(), [expectClose(1000)], 'the server echoes the close and ends the stream')
  await c.waitClosed()
  t.equal(c.stream?.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'a clean end, no RST_STREAM error')
  await deadline(new Promise<void>((resolve) => { const check = (): void => { if (closes.length === 1) resolve(); else setImmediate(check) }; check() }), 'the server close')
  t.same(closes, [{ code: 1000, reason: 'bye', wasClean: true }])
})

t.test('terminate() on the server resets the stream with CANCEL (RFC 8441 §5)', async (t) => {
  let serverStream: http2.ServerHttp2Stream | undefined
  const server = await startH2('h2', (app) => {
    app.ws('/drop', (socket, request) => {
      serverStream = (request.raw as unknown as http2.Http2ServerRequest).stream
      socket.on('message', () => { socket.terminate() })
    })
  })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const c = await RawWebSocket.connectH2(session, '/drop')
  await c.send(text('go'))
  await c.waitClosed()
  // what the server sent: Node closes a stream with END_STREAM before its RST_STREAM, so a client
  // that answers END_STREAM at once (as this one does, like TCP without allowHalfOpen) may close
  // the stream normally before the RST arrives (Node 22 and later deliver 'end' first)
  t.equal(serverStream?.rstCode, NGHTTP2_CANCEL, 'the server reset the stream with CANCEL')
  t.ok(c.stream?.rstCode === NGHTTP2_CANCEL || c.stream?.rstCode === http2.constants.NGHTTP2_NO_ERROR, 'the client stream is closed')
  t.notOk(session.destroyed, 'the session lives on')
})

t.test('refusals: no route 404, a non-WebSocket route answers as HTTP, another :protocol refused, plain CONNECT 405', async (t) => {
  const server = await startH2('h2', (app) => {
    app.ws('/echo', echo)
    app.get('/plain', async () => 'plain')
  })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const base = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', 'sec-websocket-version': '13' }
  t.equal((await h2request(session, { ...base, ':path': '/nope' })).status, 404, 'no route')
  const other = await h2request(session, { ...base, ':protocol': 'webtransport', ':path': '/echo' })
  t.equal(other.status, 501, 'another :protocol')
  t.equal(JSON.parse(other.body).code, 'WS_ERR_HANDSHAKE_CONNECT_PROTOCOL')
  const version = await h2request(session, { ...base, ':path': '/echo', 'sec-websocket-version': '8' })
  t.equal(version.status, 426, 'wrong Sec-WebSocket-Version')
  t.equal(version.headers['sec-websocket-version'], '13')
  const plainRoute = await h2request(session, { ...base, ':path': '/plain' })
  t.not(plainRoute.status, 200, 'a plain route never opens a tunnel')
  t.equal(plainRoute.status, 404)
  const tunnel = await h2request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' })
  t.equal(tunnel.status, 405, 'a classic CONNECT tunnel is not offered')
  t.equal((await h2request(session, { ':path': '/plain' })).body, 'plain', 'the session still serves requests')
})

t.test('the same routes serve HTTP/1.1 upgrades on the same TLS port (allowHTTP1)', async (t) => {
  const versions: string[] = []
  const server = await startH2('h2', (app) => {
    app.ws('/echo', (socket, request) => { versions.push(request.raw.httpVersion); echo(socket) })
  })
  t.teardown(server.close)
  const ws = new WS(`wss://127.0.0.1:${server.port}/echo`, { rejectUnauthorized: false })
  await deadline(once(ws, 'open'), 'ws open')
  ws.send('over http/1.1')
  const [data] = await deadline(once(ws, 'message'), 'echo') as [Buffer]
  t.equal(data.toString(), 'over http/1.1')
  ws.close()
  await deadline(once(ws, 'close'), 'ws close')
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const c = await RawWebSocket.connectH2(session, '/echo')
  await c.send(text('over h2'))
  t.same(await c.next(), [expectText('over h2')])
  t.same(versions, ['1.1', '2.0'])
  t.same(await c.closeAndRest(), [expectClose(1000)])
})

t.test('many WebSockets and ordinary requests share one connection; one reset mid-message harms no other', async (t) => {
  const closes: Closed[] = []
  const sessions = new Set<unknown>()
  const server = await startH2('h2', (app) => {
    app.get('/plain', async (request) => { sessions.add((request.raw as unknown as http2.Http2ServerRequest).stream.session); return 'plain' })
    app.ws('/echo', (socket, request) => {
      sessions.add((request.raw as unknown as http2.Http2ServerRequest).stream.session)
      echo(socket)
      void closed(socket).then((c) => closes.push(c))
    })
  })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const N = 20
  const clients = await Promise.all(Array.from({ length: N }, () => RawWebSocket.connectH2(session, '/echo')))
  const victim = clients[7]
  // half of a 100 kB frame, then RST_STREAM(CANCEL): the server's parser holds an incomplete message
  const big = binary(Buffer.alloc(100_000, 7))
  await victim.send(big.subarray(0, 50_000))
  const [plain] = await Promise.all([
    h2request(session, { ':path': '/plain' }),
    ...clients.map((c, i) => c === victim ? Promise.resolve() : c.send(text(`message ${i}`), binary(Buffer.alloc(70_000, i))))
  ])
  victim.stream!.close(NGHTTP2_CANCEL)
  for (let i = 0; i < N; i++) {
    if (clients[i] === victim) continue
    t.same(await clients[i].next(2), [expectText(`message ${i}`), expectBinary(Buffer.alloc(70_000, i))], `stream ${i} echoed`)
  }
  t.equal(plain.body, 'plain', 'an ordinary request on the same session')
  await deadline(new Promise<void>((resolve) => { const check = (): void => { if (closes.length === 1) resolve(); else setImmediate(check) }; check() }), 'the reset stream closes on the server')
  t.equal(closes[0].wasClean, false, 'the reset stream closed uncleanly on the server')
  t.equal(closes[0].code, 1006)
  t.equal(server.app.websocketConnections.size, N - 1, 'every other WebSocket is still open')
  t.equal(sessions.size, 1, 'one HTTP/2 session on the server')
  for (const c of clients) if (c !== victim) t.same(await c.closeAndRest(), [expectClose(1000)])
  t.equal((await h2request(session, { ':path': '/plain' })).body, 'plain')
})

t.test('subprotocol and permessage-deflate are negotiated as on HTTP/1.1', async (t) => {
  const seen: Array<{ protocol: string, extensions: string }> = []
  const server = await startH2('h2', (app) => {
    app.ws('/chat', { protocols: ['chat'], perMessageDeflate: { threshold: 1 << 20 } } as never, (socket) => {
      seen.push({ protocol: socket.protocol, extensions: socket.extensions })
      echo(socket)
    })
  }, { perMessageDeflate: true } as never)
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const c = await RawWebSocket.connectH2(session, '/chat', {
    headers: { 'Sec-WebSocket-Protocol': 'superchat, chat', 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }
  })
  t.equal(c.headers['sec-websocket-protocol'], 'chat')
  t.match(c.headers['sec-websocket-extensions'], /^permessage-deflate/)
  t.same(seen, [{ protocol: 'chat', extensions: c.headers['sec-websocket-extensions'] }])
  // below the threshold the server sends uncompressed frames (RSV1 clear)
  await c.send(text('small'))
  t.same(await c.next(), [expectText('small')])
  t.same(await c.closeAndRest(), [expectClose(1000)])
})

t.test('hooks and schemas run on an extended CONNECT: a refusing onRequest hook gets its status', async (t) => {
  const seen: Array<{ method: string, ws: boolean, url: string }> = []
  const server = await startH2('h2', (app) => {
    app.addHook('onRequest', async (request, reply) => {
      seen.push({ method: request.method, ws: request.ws, url: request.url })
      if (request.headers.authorization !== 'Bearer ok') return reply.code(401).send({ error: 'no' })
    })
    app.ws('/secret', { schema: { querystring: { type: 'object', properties: { room: { type: 'integer' } }, required: ['room'] } } }, (socket, request) => {
      socket.send(`room ${(request.query as { room: number }).room + 1}`)
    })
  })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const base = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', 'sec-websocket-version': '13' }
  const refused = await h2request(session, { ...base, ':path': '/secret?room=1' })
  t.equal(refused.status, 401)
  t.same(JSON.parse(refused.body), { error: 'no' })
  const invalid = await h2request(session, { ...base, ':path': '/secret?room=x', authorization: 'Bearer ok' })
  t.equal(invalid.status, 400, 'the querystring schema ran')
  const c = await RawWebSocket.connectH2(session, '/secret?room=41', { headers: { authorization: 'Bearer ok' } })
  t.same(await c.next(), [expectText('room 42')], 'the coerced querystring reached the handler')
  t.same(seen[0], { method: 'GET', ws: true, url: '/secret?room=1' })
  t.same(await c.closeAndRest(), [expectClose(1000)])
})

t.test('HTTP/2 stream flow control is the backpressure: a client that does not read holds one window, the server buffers the rest', async (t) => {
  let server!: WebSocket
  const app = await startH2('h2', (app) => { app.ws('/flood', (socket) => { server = socket }) })
  t.teardown(app.close)
  const { session } = await h2connect(app.origin)
  t.teardown(() => session.close())
  const c = await RawWebSocket.connectH2(session, '/flood')
  c.transport.pause()
  const size = 8 * 1024 * 1024
  t.equal(server.send(Buffer.alloc(size, 1)), false, 'send() says to wait')
  // RFC 9113 §6.9: the sender may not exceed the receiver's stream window (65,535 bytes initially)
  const window = 65_535
  await deadline(new Promise<void>((resolve) => { const check = (): void => { if (c.transport.readableLength >= window) resolve(); else setImmediate(check) }; check() }), 'one window of data at the client')
  t.equal(c.transport.readableLength, window, 'the client holds exactly one stream window')
  t.ok(server.bufferedAmount >= size - window, `the server holds the rest (${server.bufferedAmount} bytes)`)
  const drained = server.drained()
  c.transport.resume()
  await deadline(drained, 'drain once the client reads')
  t.same(await c.next(1, 20_000), [expectBinary(Buffer.alloc(size, 1))], 'the message arrived whole')
  t.same(await c.closeAndRest(), [expectClose(1000)])
})

t.test('a \'connect\' listener of the app\'s own is left the CONNECTs this plugin does not serve', async (t) => {
  const server = await startH2('h2', (app) => {
    app.ws('/echo', echo)
    app.server.on('connect', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      if (req.headers[':protocol'] === 'websocket') return
      res.writeHead(299, { 'x-handled-by': 'app' })
      res.end()
    })
  })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const tunnel = await h2request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' })
  t.same([tunnel.status, tunnel.headers['x-handled-by']], [299, 'app'], 'a classic CONNECT')
  const other = await h2request(session, { ':method': 'CONNECT', ':protocol': 'webtransport', ':scheme': 'https', ':path': '/echo' })
  t.same([other.status, other.headers['x-handled-by']], [299, 'app'], 'another :protocol')
  const c = await RawWebSocket.connectH2(session, '/echo')
  await c.send(text('still served here'))
  t.same(await c.next(), [expectText('still served here')])
  t.same(await c.closeAndRest(), [expectClose(1000)])
})

for (const transport of ['h2', 'h2c'] as Transport[]) {
  t.test(`${transport}: injectWS() speaks an extended CONNECT to an http2 app, through its hooks`, async (t) => {
    const versions: string[] = []
    const server = await startH2(transport, (app) => {
      app.addHook('onRequest', async (request, reply) => {
        if (request.headers.authorization !== 'ok') return reply.code(401).send({ error: 'no' })
      })
      app.ws('/echo', { protocols: ['chat'] } as never, (socket, request) => { versions.push(request.raw.httpVersion); echo(socket) })
    })
    t.teardown(server.close)
    const ws = await server.app.injectWS('/echo', { headers: { authorization: 'ok' }, protocols: ['chat'] })
    t.equal(ws.protocol, 'chat')
    const got = new Promise<Buffer>((resolve) => ws.once('message', resolve))
    ws.send('in memory')
    t.equal((await deadline(got, 'the echo')).toString(), 'in memory')
    t.same(versions, ['2.0'], 'over HTTP/2')
    const done = closed(ws)
    ws.close(1000)
    t.same(await done, { code: 1000, reason: '', wasClean: true })
    await t.rejects(server.app.injectWS('/echo'), { code: 'FST_ERR_WS_UPGRADE_REFUSED', statusCode: 401 }, 'a refusing hook')
  })
}

t.test('frames sent right behind the CONNECT, before the 200, are read once the WebSocket opens; a CONNECT with END_STREAM closes at once', async (t) => {
  const closes: Closed[] = []
  const server = await startH2('h2c', (app) => {
    app.addHook('onRequest', async () => { await new Promise((resolve) => setImmediate(resolve)) })
    app.ws('/echo', (socket) => { echo(socket); void closed(socket).then((c) => closes.push(c)) })
  })
  t.teardown(server.close)
  const { session } = await h2connect(server.origin)
  t.teardown(() => session.close())
  const headers = { ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'http', ':path': '/echo', 'sec-websocket-version': '13' }
  const early = session.request(headers, { endStream: false })
  early.write(text('early'))
  const [response] = await deadline(once(early, 'response'), 'the 200') as [http2.IncomingHttpHeaders]
  t.equal(response[':status'], 200)
  const chunks: Buffer[] = []
  early.on('data', (c: Buffer) => chunks.push(c))
  await deadline(new Promise<void>((resolve) => { const check = (): void => { if (Buffer.concat(chunks).length >= 7) resolve(); else setImmediate(check) }; check() }), 'the echo')
  t.same(Buffer.concat(chunks), Buffer.from([0x81, 5, ...Buffer.from('early')]), 'echoed unmasked')
  early.close(NGHTTP2_CANCEL)
  const ended = session.request(headers, { endStream: true })
  ended.on('error', () => {})
  ended.resume()
  await deadline(once(ended, 'close'), 'the stream to close')
  await deadline(new Promise<void>((resolve) => { const check = (): void => { if (closes.length === 2) resolve(); else setImmediate(check) }; check() }), 'both server closes')
  t.same(closes.map((c) => c.wasClean), [false, false], 'neither closed cleanly; the process lives on')
  t.equal((await h2request(session, { ':path': '/nope' })).status, 404, 'the session still serves requests')
})

t.test('permessage-deflate messages both ways over an HTTP/2 stream', async (t) => {
  const server = await startH2('h2', (app) => { app.ws('/z', echo) }, { perMessageDeflate: { threshold: 0 } } as never)
  t.teardown(server.close)
  const ws = await server.app.injectWS('/z', { perMessageDeflate: { threshold: 0 } })
  t.match(ws.extensions, /^permessage-deflate/)
  const big = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `user-${i % 50}` })))
  const got = new Promise<Buffer[]>((resolve) => {
    const all: Buffer[] = []
    ws.on('message', (data: Buffer) => { all.push(data); if (all.length === 2) resolve(all) })
  })
  ws.send(big)
  ws.send(Buffer.alloc(100_000, 3))
  const [text, bin] = await deadline(got, 'both echoes')
  t.equal(text.toString(), big, 'compressed text echoed')
  t.ok(bin.equals(Buffer.alloc(100_000, 3)), 'compressed binary echoed')
  const done = closed(ws)
  ws.close(1000)
  t.same(await done, { code: 1000, reason: '', wasClean: true })
})
