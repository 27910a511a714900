// Chat rooms with validated, typed messages (TypeBox): the message schema is a union keyed by
// `type`, each type has its handler, and outbound messages are serialized from their schema.
// Run: npx tsx examples/typed-rooms.ts   then e.g.  npx wscat -c 'ws://127.0.0.1:3000/rooms/lobby?name=ann'
//   > {"type":"say","text":"hello"}
//   > {"type":"say","text":42}        <- {"type":"error","code":"WS_ERR_MESSAGE_SCHEMA",...}
import Fastify from 'fastify'
import { type Static, Type, TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket from '../lib/index.js'

const Inbound = Type.Union([
  Type.Object({ type: Type.Literal('say'), text: Type.String({ minLength: 1, maxLength: 500 }) }),
  Type.Object({ type: Type.Literal('typing') }),
  Type.Object({ type: Type.Literal('who') })
])
const Outbound = Type.Object({
  type: Type.String(),
  from: Type.Optional(Type.String()),
  text: Type.Optional(Type.String()),
  names: Type.Optional(Type.Array(Type.String()))
})

export async function buildTypedRooms () {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: process.env.LOG_LEVEL ?? 'info' } })
    .setValidatorCompiler(TypeBoxValidatorCompiler)
    .withTypeProvider<TypeBoxTypeProvider>()
  await app.register(websocket, { maxPayload: 64 * 1024 })

  const names = new WeakMap<object, string>()
  const rooms = new WeakMap<object, string>()
  const peers = (route: string, room: string) =>
    [...(app.websocketConnectionsByRoute.get(route) ?? [])].filter((s) => rooms.get(s) === room)
  const broadcast = (route: string, room: string, message: Static<typeof Outbound>) => {
    for (const socket of peers(route, room)) socket.send(message)
  }

  app.ws('/rooms/:room', {
    schema: {
      params: Type.Object({ room: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }) }),
      querystring: Type.Object({ name: Type.String({ minLength: 1, maxLength: 32 }) }),
      message: Inbound,
      outbound: Outbound
    },
    // one handler per message type; `message` is typed from its member of the union
    messageHandlers: {
      say (message, socket, request) {
        broadcast(request.routeOptions.url!, request.params.room, { type: 'say', from: names.get(socket), text: message.text })
      },
      typing (_message, socket, request) {
        broadcast(request.routeOptions.url!, request.params.room, { type: 'typing', from: names.get(socket) })
      },
      who (_message, socket, request) {
        socket.send({ type: 'who', names: peers(request.routeOptions.url!, request.params.room).map((s) => names.get(s) ?? '?') })
      }
    }
  }, (socket, request) => {
    names.set(socket, request.query.name)
    rooms.set(socket, request.params.room)
    socket.send({ type: 'welcome', text: `hello ${request.query.name}, you are in ${request.params.room}` })
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildTypedRooms()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
