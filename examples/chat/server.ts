// Chat demo: rooms, presence and validated, typed messages. Run: npm start, then open
// http://localhost:3000 in two browser tabs. HOST / PORT from the environment (default 127.0.0.1:3000).
//
// The inbound message schema is a union keyed by `type`; each type has its own handler and its
// `message` parameter is typed from the schema (TypeBox). Invalid messages never reach a handler:
// the client gets {"type":"error","code":...,"message":...} and stays connected.
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type, TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket, { broadcast, type WebSocket } from '../../lib/index.js'

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
  await app.register(websocket, { maxPayload: 64 * 1024 })

  const rooms = new Map<string, Map<WebSocket, string>>()
  const where = new WeakMap<object, { room: string, name: string }>()
  const members = (room: string): string[] => [...(rooms.get(room)?.values() ?? [])].sort()
  // framed once, the same bytes written to every member
  const toRoom = (room: string, message: object): void => {
    broadcast(rooms.get(room)?.keys() ?? [], message)
  }
  const leave = (socket: WebSocket): void => {
    const seat = where.get(socket)
    if (seat === undefined) return
    where.delete(socket)
    rooms.get(seat.room)?.delete(socket)
    if (rooms.get(seat.room)?.size === 0) rooms.delete(seat.room)
    toRoom(seat.room, { type: 'presence', room: seat.room, members: members(seat.room) })
  }

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))

  app.ws('/chat', {
    schema: { message: ClientMessage },
    messageHandlers: {
      join (message, socket) {
        leave(socket as WebSocket)
        let peers = rooms.get(message.room)
        if (peers === undefined) rooms.set(message.room, peers = new Map())
        peers.set(socket as WebSocket, message.name)
        where.set(socket, { room: message.room, name: message.name })
        socket.send({ type: 'joined', room: message.room, name: message.name })
        toRoom(message.room, { type: 'presence', room: message.room, members: members(message.room) })
      },
      say (message, socket) {
        const seat = where.get(socket)
        if (seat === undefined) socket.send({ type: 'error', code: 'NOT_IN_A_ROOM', message: 'join a room first' })
        else toRoom(seat.room, { type: 'message', room: seat.room, from: seat.name, text: message.text, at: Date.now() })
      },
      leave (_message, socket) {
        leave(socket as WebSocket)
        socket.send({ type: 'left' })
      }
    }
  }, (socket) => {
    socket.on('close', () => leave(socket as WebSocket))
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildChat()
  const address = await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
  app.log.info(`chat demo on ${address} — open it in two tabs`)
}
