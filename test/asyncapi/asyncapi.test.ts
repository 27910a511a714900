// The AsyncAPI 3.0 document of an app's WebSocket routes, checked by @asyncapi/parser: it parses
// with no error, and every route (prefix and params included) and message type appears, in the
// direction the contract gives it, with the request types' replies, subprotocols and close codes.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { Parser } from '@asyncapi/parser'
import websocket, { defineContract } from '../../lib/index.js'

const contract = defineContract({
  client: {
    join: Type.Object({ room: Type.String() }),
    say: Type.Object({ text: Type.String({ maxLength: 500 }) })
  },
  server: {
    message: Type.Object({ from: Type.String(), text: Type.String() }),
    presence: Type.Object({ members: Type.Array(Type.String()) })
  },
  replies: { join: Type.Object({ members: Type.Array(Type.String()) }) }
})

t.test('the document of the registered routes parses and names every route and message', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/chat/:room', { contract, protocols: ['chat.v1'], messageHandlers: { join: () => ({ members: [] }) } })
  await app.register(async (child) => {
    child.ws('/echo', { schema: { message: { type: 'object', properties: { n: { type: 'integer' } } } } }, () => {})
  }, { prefix: '/v1' })
  app.get('/plain', { websocket: true }, () => {})
  app.get('/http', async () => 'not a WebSocket route')
  await app.listen({ host: '127.0.0.1', port: 0 })

  const document = app.asyncapi({ info: { title: 'chat', version: '2.0.0' } })
  const { document: parsed, diagnostics } = await new Parser().parse(JSON.stringify(document))
  t.same(diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('.')}: ${d.message}`), [], 'no errors')
  t.ok(parsed, 'parsed')
  const channels = parsed!.channels().all().map((c) => c.address()).sort()
  t.same(channels, ['/chat/{room}', '/plain', '/v1/echo'], 'every WebSocket route, prefixed, params in braces; no HTTP route')
  const chat = parsed!.channels().all().find((c) => c.address() === '/chat/{room}')!
  t.same(chat.parameters().all().map((p) => p.id()), ['room'])
  const messages = chat.messages().all().map((m) => m.id()).sort()
  t.same(messages, ['client_join', 'client_say', 'error', 'reply_join', 'server_message', 'server_presence'], 'every message type both ways, the reply and the refusal')
  const ops = parsed!.operations().all().filter((o) => o.channels().all().some((c) => c.address() === '/chat/{room}'))
  const byAction = (action: string): string[] => ops.filter((o) => o.action() === action).flatMap((o) => o.messages().all().map((m) => m.name() ?? '')).sort()
  t.same(byAction('receive'), ['join', 'say'], 'the app receives what the client sends')
  t.same(byAction('send'), ['error', 'message', 'presence'], 'the app sends the server messages and refusals')
  const join = ops.find((o) => o.id() === 'chat_room_receive_join')!
  t.ok(join.reply(), 'a request type has a reply')
  t.same(join.reply()!.messages().all().map((m) => m.id()), ['reply_join'])
  t.match(chat.messages().all().find((m) => m.id() === 'client_say')!.payload()!.json(), {
    type: 'object',
    properties: { type: { const: 'say' }, text: { type: 'string', maxLength: 500 } },
    required: ['type', 'text']
  }, 'payload schemas as the route validates them')
  t.same((document as any).channels.chat_room.bindings.ws.headers.properties['Sec-WebSocket-Protocol'].enum, ['chat.v1'], 'subprotocols')
  t.match((document as any).channels.chat_room['x-close-codes'], { 1000: String, 1008: String, 1011: String }, 'close codes')
  t.match((document as any).servers.default, { protocol: 'ws', host: /^127\.0\.0\.1:\d+$/ }, 'the server the app listens on')
})

t.test('an app without WebSocket routes has an empty, valid document', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const { diagnostics } = await new Parser().parse(JSON.stringify(app.asyncapi()))
  t.same(diagnostics.filter((d) => d.severity === 0), [])
})

t.test('the asyncapi plugin option serves the document', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { asyncapi: { path: '/docs/ws.json', info: { title: 'served', version: '0.0.1' } } })
  app.ws('/chat', { contract }, () => {})
  const response = await app.inject('/docs/ws.json')
  t.equal(response.statusCode, 200)
  const document = response.json()
  t.match(document, { asyncapi: '3.0.0', info: { title: 'served' }, channels: { chat: { address: '/chat' } } })
  const { diagnostics } = await new Parser().parse(response.body)
  t.same(diagnostics.filter((d) => d.severity === 0), [])

  const other = Fastify()
  t.teardown(() => other.close())
  await other.register(websocket, { asyncapi: true })
  t.equal((await other.inject('/asyncapi.json')).statusCode, 200, 'true: the default path')
  const bad = Fastify()
  t.teardown(() => bad.close())
  await t.rejects(async () => { await bad.register(websocket, { asyncapi: { path: 'no-slash' } }) }, { code: 'FST_ERR_WS_INVALID_OPTION' })
})
