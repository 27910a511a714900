// The same @fastify/websocket application (app.js, unchanged) against @fastify/websocket and
// against fastify-rfc6455: every assertion below must hold for both plugins.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import fastifyWebsocket from '@fastify/websocket'
import t from 'tap'
import WebSocket from 'ws'
import websocket from '../../lib/index.js'
import { buildApp } from './app.js'

const KEY = { 'api-key': 'some-random-key' }

function deadline<T> (promise: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms) })
  ]).finally(() => clearTimeout(timer))
}

interface Received { data: Buffer, isBinary: boolean }
const inboxes = new WeakMap<WebSocket, { queue: Received[], waiters: Array<(m: Received) => void> }>()

/** Every message is queued from the moment the client exists, so none is missed before 'open'. */
function track (ws: WebSocket): WebSocket {
  const inbox = { queue: [] as Received[], waiters: [] as Array<(m: Received) => void> }
  inboxes.set(ws, inbox)
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const waiter = inbox.waiters.shift()
    if (waiter !== undefined) waiter({ data, isBinary })
    else inbox.queue.push({ data, isBinary })
  })
  return ws
}

function next (ws: WebSocket): Promise<Received> {
  const inbox = inboxes.get(ws)!
  const queued = inbox.queue.shift()
  if (queued !== undefined) return Promise.resolve(queued)
  return deadline(new Promise((resolve) => inbox.waiters.push(resolve)), 'a message')
}

async function open (port: number, path: string, headers: Record<string, string> = KEY): Promise<WebSocket> {
  const ws = track(new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers }))
  await deadline(once(ws, 'open'), `open ${path}`)
  return ws
}

for (const [name, plugin] of [['@fastify/websocket', fastifyWebsocket], ['fastify-rfc6455', websocket]] as const) {
  t.test(name, async (t) => {
    const { app, seen } = await buildApp(plugin)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    let closed = false
    t.teardown(async () => { if (!closed) await app.close() })

    t.test('a hook that refuses answers with its status, never 101', async (t) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`)
      const [, res] = await deadline(once(ws, 'unexpected-response'), 'the refusal') as [unknown, { statusCode: number }]
      t.equal(res.statusCode, 401)
      ws.on('error', () => {})
      ws.terminate()
    })

    t.test('ws-style send(data, { binary }) echoes text as text and binary as binary', async (t) => {
      const ws = await open(port, '/echo')
      ws.send('hi from client')
      const text = await next(ws)
      t.equal(text.isBinary, false)
      t.equal(text.data.toString(), 'hi from client')
      ws.send(Buffer.from([0, 1, 2, 255]))
      const binary = await next(ws)
      t.equal(binary.isBinary, true)
      t.same([...binary.data], [0, 1, 2, 255])
      ws.close()
      await once(ws, 'close')
    })

    t.test('a room relays with send(data, options, cb)', async (t) => {
      const a = await open(port, '/room')
      const b = await open(port, '/room')
      // each receives 'joined' first; wait for both before relaying
      t.equal((await next(a)).data.toString(), 'joined')
      t.equal((await next(b)).data.toString(), 'joined')
      a.send('from a')
      t.equal((await next(b)).data.toString(), 'from a')
      b.send(Buffer.from('from b'))
      const got = await next(a)
      t.equal(got.isBinary, true)
      t.equal(got.data.toString(), 'from b')
      a.close(); b.close()
      await Promise.all([once(a, 'close'), once(b, 'close')])
    })

    t.test('wsHandler and handler share a URL', async (t) => {
      const res = await app.inject({ method: 'GET', url: '/hello', headers: KEY })
      t.same(res.json(), { hello: 'world' })
      const ws = await open(port, '/hello')
      t.equal((await next(ws)).data.toString(), 'hello client')
      ws.send('bye')
      const [code] = await deadline(once(ws, 'close'), 'close') as [number]
      t.equal(code, 1005)
    })

    t.test('a rejected handler reaches the errorHandler', async (t) => {
      const ws = await open(port, '/fails')
      const [code] = await deadline(once(ws, 'close'), 'close') as [number]
      t.equal(code, 1006, 'the errorHandler terminated the socket')
      t.ok(seen.errors.includes('handler failed'))
    })

    t.test('hooks see request.ws and schema.hide; onRoute hooks see hide on websocket routes', async (t) => {
      t.ok(seen.upgradeHooks.includes('/echo hide=true'), seen.upgradeHooks.join(', '))
      for (const url of ['/echo', '/room', '/fails']) t.ok(seen.hiddenRoutes.includes(url), `${url} hidden`)
      t.notOk(seen.hiddenRoutes.includes('/health'))
    })

    t.test('injectWS(path, upgradeContext, { onInit, onOpen })', async (t) => {
      const events: string[] = []
      const ws = await (app.injectWS as unknown as (...args: unknown[]) => Promise<WebSocket>)('/echo', { headers: KEY }, {
        onInit: (socket: unknown) => { events.push(socket === undefined ? 'init without socket' : 'init') },
        onOpen: (socket: unknown) => { events.push(socket === undefined ? 'open without socket' : 'open') }
      })
      t.same(events, ['init', 'open'])
      track(ws as unknown as WebSocket)
      ws.send('injected')
      t.equal((await next(ws as unknown as WebSocket)).data.toString(), 'injected')
      ws.terminate()
    })

    t.test('app.close() resolves with clients connected; they are closed cleanly', async (t) => {
      const ws = await open(port, '/room')
      await next(ws)
      const code = deadline(once(ws, 'close'), 'close').then(([c]) => c as number)
      await deadline(app.close(), 'app.close()')
      closed = true
      // @fastify/websocket closes with no status (1005); this plugin says why: 1001 going away
      t.equal(await code, name === '@fastify/websocket' ? 1005 : 1001)
    })
  })
}
