// Type tests of the registration options (compiled by `tsc --noEmit`): the plugin-only options
// server and preClose, and the names TypeScript refuses as the plugin does at run time.
import { createServer } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type PreCloseHook, type WebSocketPluginOptions } from '../lib/index.js'

function expectType<T> (_value: T): void {}

const app = Fastify()
await app.register(websocket, {
  server: createServer(),
  async preClose () {
    expectType<FastifyInstance>(this)
    for (const socket of this.websocketConnections) socket.send({ type: 'shutdown' })
  }
})

const callbackStyle: PreCloseHook = function (done) { setImmediate(done) }
const options: WebSocketPluginOptions = { preClose: callbackStyle, maxPayload: 0 }
expectType<WebSocketPluginOptions>(options)

// @ts-expect-error the @fastify/websocket shape is refused (FST_ERR_WS_MOVED_OPTION at run time)
await Fastify().register(websocket, { options: { maxPayload: 1024 } })
// @ts-expect-error an unknown name (FST_ERR_WS_UNKNOWN_OPTION at run time)
await Fastify().register(websocket, { maxPaylod: 1024 })
// @ts-expect-error server must be a server
await Fastify().register(websocket, { server: 3000 })
// @ts-expect-error a plugin-only option on a route (FST_ERR_WS_INVALID_OPTION at run time)
app.ws('/x', { ws: { preClose: () => {} } }, () => {})
