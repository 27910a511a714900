// Chat demo: rooms, presence, typed messages. Run: npm start, then open http://localhost:3000
// in two browser tabs. HOST / PORT from the environment (default 127.0.0.1:3000).
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { broadcast, type WebSocket } from '../../lib/index.js'

type ClientMessage =
  | { type: 'join', room: string, name: string }
  | { type: 'say', text: string }
  | { type: 'leave' }

const page = readFileSync(new URL('./index.html', import.meta.url), 'utf8')

function parseClientMessage (raw: string): ClientMessage | string {
  let value: unknown
  try { value = JSON.parse(raw) } catch { return 'not JSON' }
  if (typeof value !== 'object' || value === null) return 'not an object'
  const m = value as Record<string, unknown>
  const short = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max
  switch (m.type) {
    case 'join':
      return short(m.room, 32) && short(m.name, 32) ? { type: 'join', room: m.room, name: m.name } : 'join needs room and name (1-32 chars)'
    case 'say':
      return short(m.text, 500) ? { type: 'say', text: m.text } : 'say needs text (1-500 chars)'
    case 'leave':
      return { type: 'leave' }
    default:
      return 'unknown type'
  }
}

export async function buildChat (): Promise<FastifyInstance> {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: 'info' } })
  await app.register(websocket, { maxPayload: 64 * 1024 })

  const rooms = new Map<string, Map<WebSocket, string>>()
  const members = (room: string): string[] => [...(rooms.get(room)?.values() ?? [])].sort()
  // framed once, the same bytes written to every member
  const toRoom = (room: string, message: object): void => {
    broadcast(rooms.get(room)?.keys() ?? [], message)
  }

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(page))

  app.ws('/chat', (socket) => {
    let room: string | undefined
    let name = ''
    const leave = (): void => {
      if (room === undefined) return
      const left = room
      rooms.get(left)?.delete(socket)
      if (rooms.get(left)?.size === 0) rooms.delete(left)
      room = undefined
      toRoom(left, { type: 'presence', room: left, members: members(left) })
    }
    socket.on('message', (data, isBinary) => {
      const message = isBinary ? 'binary messages are not supported' : parseClientMessage(data.toString('utf8'))
      if (typeof message === 'string') {
        socket.send({ type: 'error', message })
        return
      }
      switch (message.type) {
        case 'join': {
          leave()
          room = message.room
          name = message.name
          let peers = rooms.get(room)
          if (peers === undefined) rooms.set(room, peers = new Map())
          peers.set(socket, name)
          socket.send({ type: 'joined', room, name })
          toRoom(room, { type: 'presence', room, members: members(room) })
          break
        }
        case 'say':
          if (room === undefined) socket.send({ type: 'error', message: 'join a room first' })
          else toRoom(room, { type: 'message', room, from: name, text: message.text, at: Date.now() })
          break
        case 'leave':
          leave()
          socket.send({ type: 'left' })
          break
      }
    })
    socket.on('close', leave)
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildChat()
  const address = await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
  app.log.info(`chat demo on ${address} — open it in two tabs`)
}
