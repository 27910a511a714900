// Type tests of the public API, compiled by `tsc --noEmit` (npm test): positive uses, and
// `@ts-expect-error` lines that must stay errors.
import Fastify from 'fastify'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket, {
  type InvalidMessageError,
  type MessageSocket,
  type WebSocket,
  type WebSocketCloseInfo,
  WebSocketUpgradeError
} from '../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T> (_value: T): void {}
function assertEqual<_T extends true> (): void {}
function takesWebSocket (socket: WebSocket): void { void socket }

const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
await app.register(websocket, { maxPayload: 1024, invalidMessage: 'reply', errorHandler: (error, socket, request) => { expectType<unknown>(error); expectType<WebSocket>(socket); request.log.error('x') } })

const Say = Type.Object({ text: Type.String(), to: Type.Optional(Type.String()) })
const Reply = Type.Object({ from: Type.String(), text: Type.String() })

// ---- a TypeBox-typed route: params, query, inbound and outbound messages are inferred ----
app.ws('/rooms/:room', {
  schema: {
    params: Type.Object({ room: Type.String() }),
    querystring: Type.Object({ lang: Type.Optional(Type.String()) }),
    message: Say,
    outbound: Reply
  },
  maxPayload: 4096
}, (socket, request) => {
  const room: string = request.params.room
  const lang: string | undefined = request.query.lang
  // @ts-expect-error: not a declared param
  request.params.nope
  socket.on('message', (message) => {
    assertEqual<Equal<typeof message, { text: string, to?: string }>>()
    // @ts-expect-error: not in the message schema
    message.nope
    socket.send({ from: room, text: message.text })
    // @ts-expect-error: wrong outbound shape
    socket.send({ from: room })
    // @ts-expect-error: wrong outbound property type
    socket.send({ from: room, text: 42 })
    socket.send(`raw text ${lang ?? ''}`)
    socket.send(Buffer.from('raw bytes'))
  })
  socket.on('close', (code, reason, wasClean) => {
    expectType<number>(code)
    expectType<Buffer>(reason)
    expectType<boolean>(wasClean)
  })
})

// the async iterator yields the message type
app.ws('/iterate', { schema: { message: Type.Array(Type.Number()) } }, async (socket) => {
  for await (const numbers of socket) {
    assertEqual<Equal<typeof numbers, number[]>>()
  }
})

// ---- shorthand without options: an untyped WebSocket and request ----
app.ws('/plain', (socket, request) => {
  expectType<WebSocket>(socket)
  expectType<string>(request.url)
  socket.on('message', (data: Buffer, isBinary: boolean) => socket.send(isBinary ? data : data.toString()))
})

// shorthand with a TypeBox params schema only: the request is typed, the socket is plain
app.ws('/users/:id', { schema: { params: Type.Object({ id: Type.Integer() }) } }, (socket, request) => {
  const id: number = request.params.id
  expectType<WebSocket>(socket)
  socket.send({ id })
})

// ---- a type-keyed union routed to per-type handlers ----
const Chat = Type.Union([
  Type.Object({ type: Type.Literal('join'), room: Type.String() }),
  Type.Object({ type: Type.Literal('say'), text: Type.String() })
])
app.ws('/chat', {
  schema: { message: Chat },
  messageHandlers: {
    join: (message, socket) => {
      const room: string = message.room
      // @ts-expect-error: 'join' messages have no text
      message.text
      socket.send(room)
    },
    say: async (message) => {
      const text: string = message.text
      return text
    }
  }
}, (socket) => {
  socket.on('message', (message) => {
    expectType<'join' | 'say'>(message.type)
  })
})
// @ts-expect-error: no message type 'leave' in the union
app.ws('/chat-bad', { schema: { message: Chat }, messageHandlers: { leave: () => {} } }, () => {})
// handlers only
app.ws('/table', { schema: { message: Chat }, messageHandlers: { say: (message) => { const t: string = message.text; return t } } })

// ---- route options on app.get / app.route ----
app.get('/both', {
  schema: { querystring: Type.Object({ token: Type.String() }) },
  wsHandler: (socket, request) => {
    const token: string = request.query.token
    socket.send(token)
  }
}, async (request) => ({ token: request.query.token }))
// `websocket: true` on app.get: the handler is (socket, request), the request typed from the
// schema (types/tsconfig.json compiles these tests without @fastify/websocket's declarations)
app.get('/get-ws', { websocket: true, schema: { params: Type.Object({ id: Type.String() }) } }, (socket, request) => {
  const id: string = request.params.id
  socket.send(id)
  expectType<WebSocket>(socket)
  takesWebSocket(socket)
})
app.get('/get-ws-messages', { websocket: true, schema: { message: Say } }, (socket) => {
  socket.on('message', (message) => { assertEqual<Equal<typeof message, { text: string, to?: string }>>() })
  takesWebSocket(socket)
})
// a plain GET keeps Fastify's (request, reply)
app.get('/plain-get', async (request, reply) => reply.send({ url: request.url }))
app.route({ method: 'GET', url: '/route', websocket: true, ws: { maxPayload: 10, invalidMessage: 'close' }, handler: () => {} })

// ---- options ----
app.ws('/policy', {
  schema: { message: Say },
  invalidMessage: (error, socket) => {
    expectType<InvalidMessageError>(error)
    expectType<string>(error.code)
    expectType<number>(error.closeCode)
    expectType<Array<{ instancePath: string, message: string }>>(error.errors)
    socket.close(error.closeCode)
  },
  protocols: (offered) => offered[0]
}, () => {})
// @ts-expect-error: maxPayload is a number
app.ws('/bad-option', { maxPayload: 'big' }, () => {})
// @ts-expect-error: unknown policy
app.ws('/bad-policy', { invalidMessage: 'ignore' }, () => {})
// @ts-expect-error: a handler takes (socket, request), not three arguments
app.ws('/bad-arity', (socket: WebSocket, request: unknown, extra: string) => {})
// @ts-expect-error: a path is required
app.ws(() => {})
// @ts-expect-error: plugin option types are checked
await app.register(websocket, { closeTimeout: '5s' })

// ---- lifecycle and registry ----
app.addWebSocketHook('onOpen', (socket, request) => { expectType<WebSocket>(socket); expectType<string>(request.url) })
app.addWebSocketHook('onClose', (_socket, _request, info) => { expectType<WebSocketCloseInfo>(info); expectType<number>(info.durationMs) })
// @ts-expect-error: no such hook
app.addWebSocketHook('onMessage', () => {})
expectType<number>(app.websocketConnections.size)
expectType<ReadonlySet<WebSocket> | undefined>(app.websocketConnectionsByRoute.get('/chat'))

// ---- injectWS ----
const client = await app.injectWS('/rooms/lobby', { headers: { authorization: 'Bearer x' }, query: { lang: 'en' }, protocols: ['chat'] })
expectType<WebSocket>(client)
client.send({ text: 'hi' })
for await (const received of client) assertEqual<Equal<typeof received, string | Buffer>>()
// @ts-expect-error: headers are strings
await app.injectWS('/x', { headers: { n: 1 } })
try { await app.injectWS('/refused') } catch (err) {
  if (err instanceof WebSocketUpgradeError) {
    expectType<number>(err.statusCode)
    expectType<string>(err.body)
  }
}

// a MessageSocket is what typed routes receive
declare const typed: MessageSocket<{ n: number }, { ok: boolean }>
typed.send({ ok: true })
// @ts-expect-error: outbound type
typed.send({ ok: 'yes' })
