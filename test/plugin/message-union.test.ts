// A message that fails a union keyed by `type` (anyOf/oneOf whose branches each fix `type` with a
// `const`) is answered with the errors of the branch its `type` selects, or with one error naming
// the allowed types. Real sockets: a `ws` client on 127.0.0.1, the reply read off the wire.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import WS from 'ws'
import websocket, { type InvalidMessageError } from '../../lib/index.js'
import { deadline } from './helpers.js'

const Name = Type.String({ minLength: 1, maxLength: 32 })
// the chat demo's message schema
const ClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('join'), room: Name, name: Name }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('say'), text: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('leave') }, { additionalProperties: false })
])
// the same schema as plain JSON, for Fastify's default compiler (Ajv)
const plainUnion = JSON.parse(JSON.stringify(ClientMessage)) as { anyOf: unknown[] }

const unknownType = { instancePath: '/type', message: 'must be one of "join", "say", "leave"' }
const notAnObject = { instancePath: '', message: 'must be an object whose type is one of "join", "say", "leave"' }

interface Setup { compiler?: 'typebox', schema: unknown, route?: Record<string, unknown> }

/** A server with one JSON route on a real port, and a `ws` client connected to it. */
async function connect (t: Test, setup: Setup): Promise<{ ask: (message: unknown) => Promise<any> }> {
  const app = Fastify()
  if (setup.compiler === 'typebox') app.setValidatorCompiler(TypeBoxValidatorCompiler)
  await app.register(websocket)
  app.ws('/chat', { schema: { message: setup.schema }, ...setup.route }, (socket) => {
    socket.on('message', (message: unknown) => socket.send({ type: 'echo', message }))
  })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new WS(`${address.replace('http', 'ws')}/chat`)
  t.teardown(async () => { client.terminate(); await app.close() })
  await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'open')
  return {
    ask: (message) => {
      const reply = deadline(new Promise<any>((resolve) => client.once('message', (data) => resolve(JSON.parse(String(data))))), 'a reply')
      client.send(typeof message === 'string' ? message : JSON.stringify(message))
      return reply
    }
  }
}

for (const compiler of ['ajv', 'typebox'] as const) {
  const setup: Setup = compiler === 'typebox' ? { compiler, schema: ClientMessage } : { schema: plainUnion }

  t.test(`${compiler}: a message of a known type gets the errors of its own branch only`, async (t) => {
    const { ask } = await connect(t, setup)
    const say = await ask({ type: 'say', text: '' })
    t.equal(say.type, 'error')
    t.equal(say.code, 'WS_ERR_MESSAGE_SCHEMA')
    t.equal(say.errors.length, 1, 'one error, from the "say" branch')
    t.equal(say.errors[0].instancePath, '/text')
    t.match(say.errors[0].message, /fewer than 1 characters/i)
    t.equal(say.message, `/text ${say.errors[0].message}`, 'the one-line summary names only that error')

    const join = await ask({ type: 'join', room: 'lobby' })
    t.equal(join.errors.length, 1, 'one error, from the "join" branch')
    t.equal(join.errors[0].instancePath, '')
    t.match(join.errors[0].message, /required propert.*name/)
    t.notMatch(join.message, /text|constant|anyOf/, 'nothing from the other branches')

    const leave = await ask({ type: 'leave', extra: 1 })
    if (compiler === 'ajv') {
      // Fastify's Ajv is configured with removeAdditional: an undeclared property is stripped, not refused
      t.same(leave, { type: 'echo', message: { type: 'leave' } })
    } else {
      t.ok(leave.errors.some((e: { message: string }) => /additional properties/.test(e.message)), 'the "leave" branch refuses the extra property')
      t.notMatch(leave.message, /constant|anyOf|required/, 'nothing from the other branches')
    }

    t.same(await ask({ type: 'say', text: 'hi' }), { type: 'echo', message: { type: 'say', text: 'hi' } }, 'valid messages pass')
  })

  t.test(`${compiler}: a type that selects no branch gets one error listing the allowed types`, async (t) => {
    const { ask } = await connect(t, setup)
    for (const message of [{ type: 'nope' }, { text: 'no type' }, { type: 42 }, { type: 'constructor' }]) {
      const reply = await ask(message)
      t.same(reply, { type: 'error', code: 'WS_ERR_MESSAGE_SCHEMA', message: '/type must be one of "join", "say", "leave"', errors: [unknownType] }, JSON.stringify(message))
    }
    for (const message of [42, '"text"', null, [{ type: 'say', text: 'x' }]]) {
      const reply = await ask(JSON.stringify(message))
      t.same(reply.errors, [notAnObject], JSON.stringify(message))
    }
  })
}

t.test('oneOf unions are discriminated too, and the invalidMessage policy gets the same errors', async (t) => {
  const refused: InvalidMessageError[] = []
  const { ask } = await connect(t, {
    schema: { oneOf: plainUnion.anyOf },
    route: {
      invalidMessage: (error: InvalidMessageError, socket: { send: (data: unknown) => boolean }) => {
        refused.push(error)
        socket.send({ type: 'refused', errors: error.errors })
      }
    }
  })
  t.same((await ask({ type: 'say', text: 'x'.repeat(501) })).errors, [{ instancePath: '/text', message: 'must NOT have more than 500 characters' }])
  t.same((await ask({ type: 'shout' })).errors, [unknownType])
  t.equal(refused.length, 2)
  t.equal(refused[0].code, 'WS_ERR_MESSAGE_SCHEMA')
})

t.test('a union whose branches are not all keyed by a `type` constant keeps every error', async (t) => {
  const { ask } = await connect(t, {
    schema: {
      anyOf: [
        { type: 'object', properties: { type: { const: 'a' }, n: { type: 'number' } }, required: ['type', 'n'] },
        { type: 'object', properties: { kind: { const: 'b' } }, required: ['kind'] }
      ]
    }
  })
  const reply = await ask({ type: 'a' })
  t.ok(reply.errors.length > 1, 'the errors of every branch, as the validator reports them')
  t.match(reply.message, /kind/)
})

t.test('a union whose branches do not require `type` keeps every error (a message without a type may match)', async (t) => {
  const optional = plainUnion.anyOf.map((branch) => {
    const { required, ...rest } = branch as { required: string[] }
    return { ...rest, required: required.filter((name) => name !== 'type') }
  })
  const { ask } = await connect(t, { schema: { anyOf: optional } })
  const reply = await ask({ type: 'say', text: '' })
  t.ok(reply.errors.length > 1, 'the errors of every branch')
  t.notMatch(reply.message, /must be one of/)
})

t.test('a branch that fails while its type matches, with the root adding its own rule, is answered with the errors of the whole schema', async (t) => {
  // the root's `maxProperties` is not in any branch: the "say" branch alone accepts this message
  const { ask } = await connect(t, { schema: { ...plainUnion, type: 'object', maxProperties: 1 } })
  const reply = await ask({ type: 'say', text: 'hi' })
  t.equal(reply.code, 'WS_ERR_MESSAGE_SCHEMA')
  t.match(reply.message, /must NOT have more than 1 properties/)
})
