// What an idle connection keeps (memory per connection): its listener table stays a small
// fast-mode object, and the peer's address is looked up only when a per-address limit needs it.
// Behaviour is asserted alongside: any event name works, listeners come and go as on any emitter.
import t, { type Test } from 'tap'
import type { WebSocket as WsClient } from 'ws'
import type { EventEmitter } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import Fastify from 'fastify'
import websocket, { type WebSocket } from '../../lib/index.js'
import { deadline } from './helpers.js'
import { open } from './ws-clients.js'

// V8's own answer to "is this object in fast mode?" (a dictionary-mode object costs a hash table)
setFlagsFromString('--allow-natives-syntax')
// eslint-disable-next-line no-new-func, @typescript-eslint/no-implied-eval
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean

async function server (options: Record<string, unknown> = {}): Promise<{ app: ReturnType<typeof Fastify>, url: string, sockets: WebSocket[] }> {
  const app = Fastify()
  await app.register(websocket, options)
  const sockets: WebSocket[] = []
  app.ws('/', (socket) => {
    sockets.push(socket)
    socket.on('message', (data: Buffer) => socket.send(data.toString()))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/`, sockets }
}

/** A server with one client connected: the client and the server's WebSocket. */
async function oneConnection (t: Test): Promise<{ client: WsClient, socket: WebSocket }> {
  const { app, url, sockets } = await server()
  t.teardown(() => app.close())
  const client = await open(url)
  t.teardown(() => client.close())
  await deadline((async () => { while (sockets.length === 0) await new Promise((resolve) => setImmediate(resolve)) })(), 'the connection')
  return { client, socket: sockets[0] }
}

function listenerTable (socket: WebSocket): object {
  return (socket as unknown as { _events: object })._events
}

t.test('an open connection keeps its listeners in a fast-mode object, not a hash table', async (t) => {
  const { socket: first } = await oneConnection(t)
  const socket = first
  t.equal(socket.listenerCount('message'), 1)
  t.ok(hasFastProperties(listenerTable(socket)), 'the listener table is in fast mode')
  // the table has no prototype properties: Object.prototype's names are ordinary event names
  const proto = Object.getPrototypeOf(listenerTable(socket)) as object | null
  t.ok(proto === null || (Object.getPrototypeOf(proto) === null && Object.getOwnPropertyNames(proto).length === 0))
})

t.test('any event name works on the listener table, as on any EventEmitter', async (t) => {
  const { client, socket: first } = await oneConnection(t)
  const socket = first as unknown as EventEmitter
  const names = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'newListener']
  for (const name of names) t.equal(socket.listenerCount(name), 0, `no listener for ${name} before`)
  const heard: string[] = []
  const added: string[] = []
  socket.on('newListener', ((name: string) => { added.push(name) }))
  for (const name of names.slice(0, 4)) socket.on(name, (() => { heard.push(name) }))
  t.same(added, names.slice(0, 4), 'newListener saw each addition')
  for (const name of names.slice(0, 4)) t.equal(socket.emit(name), true, `${name} had a listener`)
  t.same(heard, names.slice(0, 4))
  t.same(socket.eventNames().sort(), ['message', ...names].sort())
  socket.removeAllListeners('toString')
  t.equal(socket.emit('toString'), false, 'removed')
  socket.once('constructor', (() => { heard.push('once') }))
  socket.emit('constructor')
  socket.emit('constructor')
  t.same(heard.slice(4), ['constructor', 'once', 'constructor'], 'once ran once')
  // the connection's own listeners still work: an echo
  const echoed = deadline(new Promise<string>((resolve) => client.once('message', (data: Buffer) => resolve(data.toString()))), 'the echo')
  client.send('still here')
  t.equal(await echoed, 'still here')
})

// runs before the last test: a route declared with its own per-address limit makes every route
// of the process count addresses
t.test('without a per-address limit the peer address is never looked up', async (t) => {
  const { socket: first } = await oneConnection(t)
  // net.Socket caches the answer of getpeername() in `_peername` (an object and a string) on
  // its first `remoteAddress`
  const raw = (first as unknown as { socket: { _peername?: unknown } }).socket
  t.equal(raw._peername, undefined, 'the socket holds no cached peer address')
})

t.test('with a per-address limit the address is counted and freed on close', async (t) => {
  const { app, url, sockets } = await server({ maxConnectionsPerAddress: 1 })
  t.teardown(() => app.close())
  const one = await open(url)
  await t.rejects(open(url), 'a second connection from the address is refused')
  const closed = deadline(new Promise((resolve) => sockets[0].once('close', resolve)), 'the close')
  one.close()
  await closed
  const two = await open(url)
  t.teardown(() => two.close())
  t.equal(two.readyState, two.OPEN, 'the closed connection freed its place')
})

t.test('a route-level per-address limit counts the connections of every route', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const opened: WebSocket[] = []
  app.ws('/free', (socket) => { opened.push(socket) })
  app.ws('/limited', { maxConnectionsPerAddress: 1 }, (socket) => { opened.push(socket) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const free = await open(`ws://127.0.0.1:${port}/free`)
  await t.rejects(open(`ws://127.0.0.1:${port}/limited`), 'the connection on /free counts against the address')
  const closed = deadline(new Promise((resolve) => opened[0].once('close', resolve)), 'the close')
  free.close()
  await closed
  const limited = await open(`ws://127.0.0.1:${port}/limited`)
  t.teardown(() => limited.close())
  t.equal(limited.readyState, limited.OPEN, 'the closed connection freed its place')
})
