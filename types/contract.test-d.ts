// Type tests of the message contract on both ends: the route's handlers and socket (server) and
// the client's send/request/on. A wrong message type, a wrong payload field, a handler for an
// undeclared type fail to compile; replies are typed.
import Fastify from 'fastify'
import { Type } from 'typebox'
import websocket from '../lib/index.js'
import { createClient, defineContract, type ClientMessage, type ServerMessage } from '../lib/client.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertEqual<_T extends true> (): void {}

const contract = defineContract({
  client: {
    join: Type.Object({ room: Type.String() }),
    say: Type.Object({ text: Type.String() })
  },
  server: {
    said: Type.Object({ from: Type.String(), text: Type.String() })
  },
  replies: {
    join: Type.Object({ members: Type.Array(Type.String()) })
  }
})
assertEqual<Equal<ClientMessage<typeof contract>, { type: 'join', room: string } | { type: 'say', text: string }>>()
assertEqual<Equal<ServerMessage<typeof contract>, { type: 'said', from: string, text: string }>>()

// plain JSON Schema (as const) types too
const plain = defineContract({ client: { ping: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } } })
assertEqual<Equal<ClientMessage<typeof plain>, { type: 'ping', n: number }>>()

const app = Fastify()
await app.register(websocket)

// ---- the server end ----
app.ws('/chat', {
  contract,
  messageHandlers: {
    join (message) {
      assertEqual<Equal<typeof message.room, string>>()
      return { members: [message.room] }
    },
    say (message, socket) {
      assertEqual<Equal<typeof message.text, string>>()
      socket.send({ type: 'said', from: 'server', text: message.text })
      // @ts-expect-error a server message type the contract does not declare
      socket.send({ type: 'shouted', text: message.text })
      // @ts-expect-error a wrong payload field
      socket.send({ type: 'said', from: 'server', txt: message.text })
      // @ts-expect-error no such field on a say message
      return message.room
    }
  }
})

app.ws('/async-reply', { contract, messageHandlers: { join: async (message) => ({ members: [message.room] }) } })

// @ts-expect-error a handler for a type the client does not send
app.ws('/undeclared', { contract, messageHandlers: { shout () {} } })

// @ts-expect-error a reply of the wrong shape
app.ws('/wrong-reply', { contract, messageHandlers: { join: () => ({ members: 'everyone' }) } })

app.ws('/listener', { contract }, (socket) => {
  socket.on('message', (message) => {
    assertEqual<Equal<typeof message, { type: 'join', room: string } | { type: 'say', text: string }>>()
  })
})

// ---- the client end ----
const client = createClient(contract, { url: 'ws://localhost:3000/chat' })
client.send('say', { text: 'hello' })
// @ts-expect-error a message type the contract does not declare
client.send('shout', { text: 'hello' })
// @ts-expect-error a wrong payload field
client.send('say', { txt: 'hello' })
// @ts-expect-error a missing payload field
client.send('join', {})

const reply = await client.request('join', { room: 'lobby' })
assertEqual<Equal<typeof reply, { members: string[] }>>()
// @ts-expect-error say declares no reply
await client.request('say', { text: 'x' })

client.on('said', (message) => {
  assertEqual<Equal<typeof message, { type: 'said', from: string, text: string }>>()
})
client.on('error', (reply) => {
  const code: string = reply.code
  return code
})
// @ts-expect-error the server sends no such type
client.on('shouted', () => {})

// topics with history: what each subscription recovered, and the positions a reconnection resumes from
client.onRecovery((recovery) => {
  const topic: string = recovery.topic
  if (recovery.recovered === false) assertEqual<Equal<typeof recovery.reason, 'epoch' | 'too-old' | 'gap'>>()
  else assertEqual<Equal<typeof recovery.recovered, number>>()
  return topic
})
const positions: Record<string, [string, number]> = client.positions
createClient(contract, { url: 'ws://localhost:3000/chat', resume: false })
// @ts-expect-error resume is a boolean
createClient(contract, { url: 'ws://localhost:3000/chat', resume: 'yes' })
export { positions }
