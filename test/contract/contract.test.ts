// The contract on the server: defineContract's checks, a contract route's inbound validation,
// handler dispatch, replies to requests (correlated by id), the invalid-message reply naming the
// refused request, outbound serialization, and the coded errors of a misdeclared route.
import t from 'tap'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import websocket, { defineContract } from '../../lib/index.js'
import { ReservedType } from '../../lib/contract/index.js'
import { PUBLICATION_TYPE, SUBSCRIBED_TYPE } from '../../lib/topics/history.js'
import { json } from '../plugin/helpers.js'

const chat = defineContract({
  client: {
    join: Type.Object({ room: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    say: Type.Object({ text: Type.String() }, { additionalProperties: false })
  },
  server: {
    said: Type.Object({ text: Type.String(), at: Type.Integer() })
  },
  replies: {
    join: Type.Object({ members: Type.Array(Type.String()) })
  }
})

t.test('defineContract refuses, at the call, what could never work', async (t) => {
  const o = Type.Object({})
  t.throws(() => defineContract({ client: {} }), { code: 'FST_ERR_WS_CONTRACT' }, 'no client type')
  t.throws(() => defineContract({ client: { a: Type.String() as any } }), { code: 'FST_ERR_WS_CONTRACT' }, 'a payload that is not an object schema')
  t.throws(() => defineContract({ client: { a: Type.Object({ type: Type.String() }) } }), { code: 'FST_ERR_WS_CONTRACT' }, 'a payload declaring type')
  t.throws(() => defineContract({ client: { a: Type.Object({ id: Type.String() }) } }), { code: 'FST_ERR_WS_CONTRACT' }, 'a client payload declaring id')
  t.throws(() => defineContract({ client: { a: o }, server: { reply: o } }), { code: 'FST_ERR_WS_CONTRACT' }, 'a reserved server type')
  t.throws(() => defineContract({ client: { a: o }, server: { error: o } }), { code: 'FST_ERR_WS_CONTRACT' }, 'a reserved server type')
  t.throws(() => defineContract({ client: { a: o }, server: { publication: o } }), { code: 'FST_ERR_WS_CONTRACT' }, 'the envelope of a publication with history')
  t.throws(() => defineContract({ client: { a: o }, server: { subscribed: o } }), { code: 'FST_ERR_WS_CONTRACT' }, 'the answer to a subscription with history')
  t.same([ReservedType.Publication, ReservedType.Subscribed], [PUBLICATION_TYPE, SUBSCRIBED_TYPE], 'the contract reserves the names the topic history puts on the wire')
  t.throws(() => defineContract({ client: { a: o }, replies: { b: o } as any }), { code: 'FST_ERR_WS_CONTRACT' }, 'a reply for an unknown type')
  const plain = defineContract({ client: { ping: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } } })
  t.same(plain.inbound, { anyOf: [{ type: 'object', properties: { type: { type: 'string', const: 'ping' }, n: { type: 'integer' } }, required: ['type', 'n'] }] }, 'plain JSON Schema works too')
})

for (const compiler of ['ajv', 'typebox'] as const) {
  t.test(`a contract route (${compiler}): dispatch, replies by id, outbound, refusals tied to the request`, async (t) => {
    const app = Fastify()
    if (compiler === 'typebox') app.setValidatorCompiler(TypeBoxValidatorCompiler)
    t.teardown(() => app.close())
    await app.register(websocket)
    const rooms: string[] = []
    app.ws('/chat', {
      contract: chat,
      messageHandlers: {
        async join (message) {
          rooms.push(message.room)
          return { members: ['ann', message.room] }
        },
        say (message, socket) {
          socket.send({ type: 'said', text: message.text, at: 1 })
        }
      }
    })
    const client = await app.injectWS('/chat')
    client.send({ type: 'join', room: 'lobby', id: 7 })
    t.same(await json(client), { type: 'reply', id: 7, data: { members: ['ann', 'lobby'] } }, 'the handler\'s return value is the reply, with the request id')
    client.send({ type: 'say' })
    const refused = await json(client)
    t.equal(refused.code, 'WS_ERR_MESSAGE_SCHEMA', 'a missing field refused')
    t.notOk('id' in refused, 'a message without id gets a reply without id')
    client.send({ type: 'join', room: '', id: 'r2' })
    t.match(await json(client), { type: 'error', code: 'WS_ERR_MESSAGE_SCHEMA', id: 'r2', errors: [{ instancePath: '/room' }] }, 'the refusal carries the request id')
    client.send({ type: 'say', text: 'hello' })
    t.same(await json(client), { type: 'said', text: 'hello', at: 1 }, 'server messages serialized by the contract\'s outbound schema')
    client.send({ type: 'join', room: 'quiet' })
    client.send({ type: 'say', text: 'after' })
    t.same(await json(client), { type: 'said', text: 'after', at: 1 }, 'a request type sent without id gets no reply')
    t.same(rooms, ['lobby', 'quiet'])
    client.terminate()
  })
}

t.test('a contract route misdeclared: coded errors at the declaration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  t.throws(() => app.ws('/a', { contract: chat, messageHandlers: { shout () {} } } as any), { code: 'FST_ERR_WS_CONTRACT_HANDLER' })
  t.throws(() => app.ws('/b', { contract: chat, schema: { message: {} } } as any, () => {}), { code: 'FST_ERR_WS_CONTRACT_CONFLICT' })
  t.throws(() => app.ws('/c', { contract: { client: {} } } as any, () => {}), { code: 'FST_ERR_WS_CONTRACT' })
})

t.test('a schema.message route also echoes the refused message\'s id', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/plain', { schema: { message: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } } }, () => {})
  const client = await app.injectWS('/plain')
  client.send({ id: 3 })
  t.match(await json(client), { type: 'error', code: 'WS_ERR_MESSAGE_SCHEMA', id: 3 })
  client.send({ id: { not: 'an id' } })
  t.notOk('id' in await json(client), 'an id that is neither a number nor a string is not echoed')
  client.terminate()
})
