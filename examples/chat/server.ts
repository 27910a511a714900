// Chat demo: rooms, presence and validated, typed messages, on the plugin's topics. Run: npm start,
// then open http://localhost:3000 in two browser tabs. HOST / PORT from the environment (default
// 127.0.0.1:3000).
//
// Each room is a topic: joining subscribes the socket, a message is published to the room's
// topic (framed once, the same bytes to every member, the sender included with `self: true`), and
// the subscriptions end with the socket. The inbound message schema is a union keyed by `type`;
// each type has its own handler and its `message` parameter is typed from the schema (TypeBox).
// Invalid messages never reach a handler: the client gets {"type":"error","code":...,"message":...}
// and stays connected.
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type, TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket, { type WebSocket } from '../../lib/index.js'

const Name = Type.String({ minLength: 1, maxLength: 32 })
const ClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('join'), room: Name, name: Name }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('say'), text: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('leave') }, { additionalProperties: false })
])

const page = readFileSync(new URL('./index.html', import.meta.url), 'utf8')

export async function buildChat (): Promise<FastifyInstance> {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: 'info' } })
    .setValidatorCompiler(TypeBoxValidatorCompiler)
    .withTypeProvider<TypeBoxTypeProvider>()
  await app.register(websocket, { maxPayload: 64 * 1024, allowedOrigins: 'same-origin' })

  // who sits in which room, for the member list (the topic itself is the plugin's)
  interface Seat { room: string, name: string }
  const seats = new WeakMap<object, Seat>()
  const rooms = new Map<string, Set<Seat>>()
  const topic = (room: string): string => `room:${room}`
  const presence = (room: string): void => {
    const members = [...(rooms.get(room) ?? [])].map((seat) => seat.name).sort()
    app.publish(topic(room), { type: 'presence', room, members })
  }
  const leave = (socket: Pick<WebSocket, 'unsubscribe'>): void => {
    const seat = seats.get(socket)
    if (seat === undefined) return
    seats.delete(socket)
    socket.unsubscribe(topic(seat.room))
    const seated = rooms.get(seat.room)
    seated?.delete(seat)
    if (seated?.size === 0) rooms.delete(seat.room)
    else presence(seat.room)
  }

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))

  app.ws('/chat', {
    schema: { message: ClientMessage },
    messageHandlers: {
      join (message, socket) {
        leave(socket)
        const seat = { room: message.room, name: message.name }
        seats.set(socket, seat)
        let seated = rooms.get(seat.room)
        if (seated === undefined) rooms.set(seat.room, seated = new Set())
        seated.add(seat)
        socket.subscribe(topic(seat.room))
        socket.send({ type: 'joined', room: seat.room, name: seat.name })
        presence(seat.room)
      },
      say (message, socket) {
        const seat = seats.get(socket)
        if (seat === undefined) socket.send({ type: 'error', code: 'NOT_IN_A_ROOM', message: 'join a room first' })
        else socket.publish(topic(seat.room), { type: 'message', room: seat.room, from: seat.name, text: message.text, at: Date.now() }, { self: true })
      },
      leave (_message, socket) {
        leave(socket)
        socket.send({ type: 'left' })
      }
    }
  }, (socket) => {
    socket.on('close', () => leave(socket))
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildChat()
  const address = await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
  app.log.info(`chat demo on ${address} — open it in two tabs`)
}
