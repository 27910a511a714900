// What an upgrade costs the server when no option asks for more: the peer's address
// (`request.ip`, a getpeername(2) system call per connection) is looked up only when the
// registration, or any route of the process, limits connections per address. A limit declared on
// one route still counts the connections of the registration's other routes.
// One file, one process: a route's limit switches the counting on for the whole process, so the
// test without any limit runs first.
import t from 'tap'
import type { Socket } from 'node:net'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { until } from '../plugin/helpers.js'
import { listening, openClient, refusedStatus } from './helpers.js'

/** Count the reads of `remoteAddress` on every socket the app's server accepts (the real getter answers). */
function countAddressReads (server: { on: (event: 'connection', listener: (socket: Socket) => void) => unknown }): () => number {
  let reads = 0
  server.on('connection', (socket) => {
    let proto: object | null = Object.getPrototypeOf(socket)
    let descriptor: PropertyDescriptor | undefined
    while (proto !== null && descriptor === undefined) {
      descriptor = Object.getOwnPropertyDescriptor(proto, 'remoteAddress')
      proto = Object.getPrototypeOf(proto)
    }
    const real = descriptor!.get!
    Object.defineProperty(socket, 'remoteAddress', {
      configurable: true,
      get () { reads++; return real.call(this) }
    })
  })
  return () => reads
}

t.test('without a per-address limit an upgrade never asks for the peer\'s address', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  let opened = 0
  app.ws('/a', () => { opened++ })
  const reads = countAddressReads(app.server)
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/a`)
  await until(() => opened === 1, 'the open')
  client.close()
  await until(() => app.websocketConnections.size === 0, 'the close')
  t.equal(reads(), 0, 'remoteAddress was never read')
})

t.test('a route\'s own maxConnectionsPerAddress counts the connections of the registration\'s other routes', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/limited', { maxConnectionsPerAddress: 2 }, () => {})
  app.ws('/open', () => {})
  const reads = countAddressReads(app.server)
  const port = await listening(app)
  const one = await openClient(`ws://127.0.0.1:${port}/open`)
  const two = await openClient(`ws://127.0.0.1:${port}/open`)
  const refused = await refusedStatus(`ws://127.0.0.1:${port}/limited`)
  t.equal(refused.status, 429, 'the two connections of the other route count')
  t.ok(reads() > 0, 'the address was looked up')
  one.close()
  await until(() => app.websocketConnections.size === 1, 'the close')
  const three = await openClient(`ws://127.0.0.1:${port}/limited`)
  t.equal(three.readyState, three.OPEN, 'a closed connection of the other route freed its place')
  two.close()
  three.close()
})
