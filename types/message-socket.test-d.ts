// Type tests of the sockets of routes with a message schema, and of `websocket: true` routes
// declared with app.route(): positive uses, and `@ts-expect-error` lines that must stay errors.
import Fastify from 'fastify'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket, { broadcast, type MessageSocket, type RouteSocket, type WebSocket } from '../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertEqual<_T extends true> (): void {}
function takesSocket (socket: WebSocket): number { return socket.readyState }

const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
await app.register(websocket)

const Chat = Type.Union([
  Type.Object({ type: Type.Literal('join'), room: Type.String() }),
  Type.Object({ type: Type.Literal('say'), text: Type.String() })
])
type ChatMessage = { type: 'join', room: string } | { type: 'say', text: string }
const Outbound = Type.Object({ type: Type.String(), text: Type.String() })

const everyone = new Set<WebSocket>()
const names = new Map<WebSocket, string>()

// ---- the socket of a schema.message route is a WebSocket wherever one is expected ----
app.ws('/chat', { schema: { message: Chat } }, (socket) => {
  everyone.add(socket)
  names.set(socket, 'ann')
  const known: boolean = app.websocketConnections.has(socket)
  const peers: Set<WebSocket> = new Set([socket])
  broadcast([socket], 'to one')
  broadcast(app.websocketConnections, { type: 'joined' }, { except: socket })
  takesSocket(socket)
  void known; void peers

  // ---- its events are typed: the validated message, and the WebSocket's other events ----
  socket.on('message', (message, isBinary) => {
    assertEqual<Equal<typeof message, ChatMessage>>()
    assertEqual<Equal<typeof isBinary, boolean>>()
  })
  socket.once('message', (message) => { assertEqual<Equal<typeof message, ChatMessage>>() })
  const onMessage = (message: ChatMessage): void => { void message }
  socket.addListener('message', onMessage)
  socket.prependListener('message', onMessage)
  socket.prependOnceListener('message', onMessage)
  socket.off('message', onMessage)
  socket.removeListener('message', onMessage)
  socket.on('close', (code, reason, wasClean) => {
    assertEqual<Equal<typeof code, number>>()
    assertEqual<Equal<typeof reason, Buffer>>()
    assertEqual<Equal<typeof wasClean, boolean>>()
  })
  socket.on('dropped', (size, error) => { size.toFixed(); error.message.trim() })
  socket.once('drain', () => {})
  const chained: MessageSocket<ChatMessage> = socket.on('ping', (data) => { data.length })
  void chained

  // @ts-expect-error: no such event
  socket.on('mesage', () => {})
  // @ts-expect-error: no such event, with once either
  socket.once('mesage', () => {})
  // @ts-expect-error: a close listener gets a number code, not a string
  socket.on('close', (code: string) => code)
  // @ts-expect-error: a message listener gets the validated message, not a Buffer
  socket.on('message', (data: Buffer) => data)
  // @ts-expect-error: not a listener of this socket's messages
  socket.off('message', (data: Buffer) => data)
})

// the socket given to a `type`-keyed handler is a WebSocket too (the chat demo's casts)
app.ws('/table', {
  schema: { message: Chat },
  messageHandlers: {
    join (message, socket) {
      everyone.add(socket)
      names.set(socket, message.room)
      broadcast(everyone, { type: 'joined', room: message.room }, { except: socket })
      takesSocket(socket)
    },
    say (message, socket) {
      if (app.websocketConnections.has(socket)) broadcast([socket], message.text)
    }
  }
})

// without a type provider the message is `unknown`; a listener may declare the type it expects
const plain = Fastify()
await plain.register(websocket)
plain.ws('/plain-json', { schema: { message: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } } }, (socket) => {
  everyone.add(socket)
  socket.on('message', (message) => { assertEqual<Equal<typeof message, unknown>>() })
  socket.on('message', (message: { text: string }) => { socket.send({ echo: message.text }) })
  // @ts-expect-error: no such event
  socket.on('mesage', (message: { text: string }) => message)
  // @ts-expect-error: a close code is a number
  socket.once('close', (code: string) => code)
})

// ---- schema.outbound: send() takes the outbound type (and raw data); the socket is a WebSocket ----
app.ws('/outbound', { schema: { outbound: Outbound } }, (socket) => {
  everyone.add(socket)
  takesSocket(socket)
  socket.send({ type: 'say', text: 'hi' })
  socket.send({ type: 'say', text: 'hi' }, (error) => { void error })
  socket.send('raw text')
  socket.send(Buffer.from('raw bytes'))
  // @ts-expect-error: not the outbound shape
  socket.send({ type: 'say' })
  socket.on('message', (data, isBinary) => {
    assertEqual<Equal<typeof data, Buffer>>()
    assertEqual<Equal<typeof isBinary, boolean>>()
  })
  // @ts-expect-error: no such event
  socket.on('mesage', () => {})
})
app.ws('/both-schemas', { schema: { message: Chat, outbound: Outbound } }, (socket) => {
  everyone.add(socket)
  socket.on('message', (message) => {
    if (message.type === 'say') socket.send({ type: 'say', text: message.text })
    // @ts-expect-error: wrong outbound property type
    socket.send({ type: 'say', text: 42 })
  })
  for (const received of everyone) takesSocket(received)
})
// the async iterator of a message route yields the validated messages
app.ws('/iterate', { schema: { message: Chat } }, async (socket) => {
  everyone.add(socket)
  for await (const message of socket) {
    assertEqual<Equal<typeof message, ChatMessage>>()
  }
})

// ---- app.route with `websocket: true`: the handler is (socket, request) ----
app.route({
  method: 'GET',
  url: '/route/:room',
  websocket: true,
  schema: { params: Type.Object({ room: Type.String() }) },
  handler: (socket, request) => {
    assertEqual<Equal<typeof socket, RouteSocket>>()
    const room: string = request.params.room
    socket.send(room)
    socket.on('close', (code) => { code.toFixed() })
    // @ts-expect-error: the socket's events are typed
    socket.on('mesage', () => {})
    // @ts-expect-error: the request is the second argument, the first is the socket
    socket.params
  }
})
app.route({
  method: 'GET',
  url: '/route-messages',
  websocket: true,
  schema: { message: Chat },
  ws: { maxPayload: 1024 },
  handler: (socket) => {
    everyone.add(socket)
    socket.on('message', (message) => {
      assertEqual<Equal<typeof message, ChatMessage>>()
      broadcast(everyone, message, { except: socket })
    })
    socket.on('close', () => everyone.delete(socket))
  }
})
app.route({
  method: 'GET',
  url: '/route-async',
  websocket: true,
  handler: async (socket) => { for await (const message of socket) socket.send(message) }
})
// `wsHandler` next to a plain HTTP handler
app.route({
  method: 'GET',
  url: '/route-both',
  schema: { querystring: Type.Object({ token: Type.String() }) },
  wsHandler: (socket, request) => {
    takesSocket(socket)
    const token: string = request.query.token
    socket.send(token)
  },
  handler: async (request, reply) => reply.send({ token: request.query.token })
})
// a plain route keeps Fastify's (request, reply)
app.route({ method: 'GET', url: '/route-plain', handler: async (request, reply) => reply.send({ url: request.url }) })
// @ts-expect-error: a WebSocket handler takes (socket, request), not three arguments
app.route({ method: 'GET', url: '/route-arity', websocket: true, handler: (socket: WebSocket, request: unknown, extra: string) => {} })
// @ts-expect-error: the socket is the first argument: a string is not one
app.route({ method: 'GET', url: '/route-string', websocket: true, handler: (socket: string) => socket })
