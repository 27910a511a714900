// Schema-validated JSON messages: safe parsing, the invalid-message policies, outbound
// serialization, the type-keyed handler table and the app's compilers (compiled once per route).
import t from 'tap'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import websocket, { InvalidMessageError, type WebSocket } from '../../lib/index.js'
import { closed, json, message, messages } from './helpers.js'

const Say = {
  type: 'object',
  properties: { text: { type: 'string', maxLength: 10 } },
  required: ['text'],
  additionalProperties: false
} as const

async function appWith (route: Record<string, unknown>, seen: unknown[] = []) {
  const app = Fastify()
  await app.register(websocket)
  app.ws('/chat', { schema: { message: Say }, ...route }, (socket) => {
    socket.on('message', (m: unknown) => {
      seen.push(m)
      socket.send({ echo: m })
    })
  })
  await app.ready()
  return app
}

t.test("default policy 'reply': the connection stays open and the client is told what was wrong", async (t) => {
  const seen: unknown[] = []
  const app = await appWith({}, seen)
  t.teardown(() => app.close())
  const client = await app.injectWS('/chat')

  client.send({ text: 'hello' })
  t.same(await json(client), { echo: { text: 'hello' } })

  // (Fastify's default Ajv coerces scalars, as for bodies: 42 would become "42"; an object cannot)
  client.send({ text: { nested: 42 } })
  const schemaError = await json(client)
  t.match(schemaError, { type: 'error', code: 'WS_ERR_MESSAGE_SCHEMA', errors: [{ instancePath: '/text', message: 'must be string' }] })
  t.match(schemaError.message, /\/text must be string/)

  client.send({ text: 'much too long for the schema' })
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_SCHEMA', errors: [{ instancePath: '/text', message: /must NOT have more than 10 characters/ }] })

  client.send({})
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_SCHEMA', errors: [{ instancePath: '', message: "must have required property 'text'" }] })

  client.send('{"text": "unterminated')
  t.match(await json(client), { type: 'error', code: 'WS_ERR_MESSAGE_NOT_JSON', errors: [] })

  client.send(Buffer.from('{"text":"binary"}'))
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_BINARY' })

  client.send({ text: 'still open' })
  t.same(await json(client), { echo: { text: 'still open' } })
  t.same(seen, [{ text: 'hello' }, { text: 'still open' }], 'the handler never saw an invalid message')
})

t.test('prototype poisoning is refused, never merged', async (t) => {
  const seen: unknown[] = []
  const app = await appWith({ schema: { message: { type: 'object' } } }, seen)
  t.teardown(() => app.close())
  const client = await app.injectWS('/chat')

  client.send('{"text":"x","__proto__":{"polluted":true}}')
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_FORBIDDEN_KEY' })
  client.send('{"constructor":{"prototype":{"polluted":true}}}')
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_FORBIDDEN_KEY' })
  client.send('{"nested":{"__proto__":{"polluted":true}}}')
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_FORBIDDEN_KEY' })
  // a harmless "constructor" key is fine, as in Fastify's body parser
  client.send('{"constructor":"ok"}')
  t.same(await json(client), { echo: { constructor: 'ok' } })

  t.same(seen, [{ constructor: 'ok' }])
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(Object.getPrototypeOf(seen[0]), Object.prototype)
})

t.test("policy 'close': 1008 for a schema mismatch, 1007 for not JSON, 1003 for binary", async (t) => {
  const seen: unknown[] = []
  const app = await appWith({ invalidMessage: 'close' }, seen)
  t.teardown(() => app.close())

  const valid = await app.injectWS('/chat')
  valid.send({ text: 'ok' })
  t.same(await json(valid), { echo: { text: 'ok' } })
  valid.close()

  const cases: Array<[string | Buffer, number]> = [
    [JSON.stringify({ text: [] }), 1008],
    ['not json', 1007],
    ['{"__proto__":{}}', 1008],
    [Buffer.from([1, 2, 3]), 1003]
  ]
  for (const [data, code] of cases) {
    const client = await app.injectWS('/chat')
    const done = closed(client)
    client.send(data)
    const result = await done
    t.equal(result.code, code, `${String(data)} -> ${code}`)
    t.equal(result.wasClean, true)
  }
  t.same(seen, [{ text: 'ok' }])
})

t.test('policy function: the route decides, and the handler never sees the message', async (t) => {
  const refused: InvalidMessageError[] = []
  const seen: unknown[] = []
  const app = await appWith({
    invalidMessage: (error: InvalidMessageError, socket: WebSocket) => {
      refused.push(error)
      if (error.code === 'WS_ERR_MESSAGE_NOT_JSON') socket.close(4000, 'speak JSON')
      else socket.send({ oops: error.errors.map((e) => e.instancePath) })
    }
  }, seen)
  t.teardown(() => app.close())
  const client = await app.injectWS('/chat')
  client.send({ text: {} })
  t.same(await json(client), { oops: ['/text'] })
  client.send({ text: 'fine' })
  t.same(await json(client), { echo: { text: 'fine' } })
  const done = closed(client)
  client.send('<xml/>')
  t.match(await done, { code: 4000, reason: 'speak JSON' })
  t.equal(refused.length, 2)
  t.ok(refused[0] instanceof InvalidMessageError)
  t.equal(refused[0].code, 'WS_ERR_MESSAGE_SCHEMA')
  t.equal(refused[0].closeCode, 1008)
  t.equal(refused[1].closeCode, 1007)
  t.equal(refused[1].data.toString(), '<xml/>')
  t.same(seen, [{ text: 'fine' }])
})

t.test('outbound schema: send(object) is serialized with the serializer compiler', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/out', {
    schema: { outbound: { type: 'object', properties: { id: { type: 'integer' }, text: { type: 'string' } } } }
  }, (socket) => {
    // fast-json-stringify writes the schema's properties only: `secret` never leaves
    socket.send({ id: 7, text: 'hi', secret: 'password' })
    socket.send('raw text is sent as is')
  })
  const client = await app.injectWS('/out')
  t.same(await messages(client, 2), ['{"id":7,"text":"hi"}', 'raw text is sent as is'])
})

t.test('a type-keyed union routes each type to its handler; other types reach the listener', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const Chat = {
    oneOf: [
      { type: 'object', properties: { type: { const: 'join' }, room: { type: 'string' } }, required: ['type', 'room'] },
      { type: 'object', properties: { type: { const: 'say' }, text: { type: 'string' } }, required: ['type', 'text'] },
      { type: 'object', properties: { type: { const: 'other' } }, required: ['type'] }
    ]
  }
  const rooms = new Map<object, string>()
  app.ws('/chat', {
    schema: { message: Chat },
    messageHandlers: {
      join (m: { room: string }, socket) { rooms.set(socket, m.room); socket.send({ joined: m.room }) },
      async say (m: { text: string }, socket) { socket.send({ room: rooms.get(socket), said: m.text }) }
    }
  }, (socket) => {
    socket.on('message', (m: unknown) => socket.send({ unhandled: m }))
  })
  // a route made of handlers only
  app.ws('/table', { schema: { message: Chat }, messageHandlers: { say: (m: { text: string }, socket: WebSocket) => socket.send(m.text.toUpperCase()) } } as any)

  const client = await app.injectWS('/chat')
  client.send({ type: 'join', room: 'lobby' })
  t.same(await json(client), { joined: 'lobby' })
  client.send({ type: 'say', text: 'hi' })
  t.same(await json(client), { room: 'lobby', said: 'hi' })
  client.send({ type: 'other' })
  t.same(await json(client), { unhandled: { type: 'other' } })
  client.send({ type: 'say' })
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_SCHEMA' }, 'validated before dispatch')

  const table = await app.injectWS('/table')
  table.send({ type: 'say', text: 'loud' })
  t.equal(await message(table), 'LOUD')
})

t.test('the async iterator yields validated values', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/sum', { schema: { message: { type: 'array', items: { type: 'number' } } } }, async (socket) => {
    let total = 0
    for await (const numbers of socket as AsyncIterable<unknown> as AsyncIterable<number[]>) {
      total += numbers.reduce((a, b) => a + b, 0)
      socket.send({ total })
    }
  })
  const client = await app.injectWS('/sum')
  client.send([1, 2])
  t.same(await json(client), { total: 3 })
  client.send(['x'])
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_SCHEMA', errors: [{ instancePath: '/0' }] })
  client.send([10])
  t.same(await json(client), { total: 13 })
})

t.test("the app's validator compiler (TypeBox here) is used, once per route", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  let compiled = 0
  app.setValidatorCompiler((definition) => {
    compiled++
    t.equal(definition.httpPart, 'body')
    return TypeBoxValidatorCompiler(definition as any)
  })
  await app.register(websocket)
  const Move = Type.Object({ x: Type.Integer({ minimum: 0 }), y: Type.Integer({ minimum: 0 }) })
  app.ws('/move', { schema: { message: Move } }, (socket) => {
    socket.on('message', (m: { x: number, y: number }) => socket.send({ sum: m.x + m.y }))
  })
  for (let i = 0; i < 3; i++) {
    const client = await app.injectWS('/move')
    client.send({ x: 1, y: i })
    t.same(await json(client), { sum: 1 + i })
    client.send({ x: -1, y: 0 })
    t.match(await json(client), { code: 'WS_ERR_MESSAGE_SCHEMA', errors: [{ instancePath: '/x' }] })
    client.close()
    await closed(client)
  }
  t.equal(compiled, 1, 'compiled once for three connections and six messages')
})

t.test('a route-level validatorCompiler applies to its messages', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/custom', {
    schema: { message: { anything: true } },
    validatorCompiler: () => (value: any) => value?.magic === 42 ? { value: { magic: 'forty-two' } } : { error: [{ instancePath: '/magic', message: 'must be the answer' }] }
  } as any, (socket) => {
    socket.on('message', (m: unknown) => socket.send({ got: m }))
  })
  const client = await app.injectWS('/custom')
  client.send({ magic: 41 })
  t.match(await json(client), { errors: [{ instancePath: '/magic', message: 'must be the answer' }] })
  client.send({ magic: 42 })
  t.same(await json(client), { got: { magic: 'forty-two' } }, 'the validator\'s value replaces the input')
})

t.test('message schemas may $ref shared schemas added with app.addSchema()', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.addSchema({ $id: 'point', type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'] })
  app.ws('/shapes', { schema: { message: { type: 'object', properties: { points: { type: 'array', items: { $ref: 'point#' } } }, required: ['points'] } } }, (socket) => {
    socket.on('message', (m: { points: unknown[] }) => socket.send({ count: m.points.length }))
  })
  const client = await app.injectWS('/shapes')
  client.send({ points: [{ x: 1, y: 2 }, { x: 3, y: 4 }] })
  t.same(await json(client), { count: 2 })
  client.send({ points: [{ x: 1 }] })
  t.match(await json(client), { code: 'WS_ERR_MESSAGE_SCHEMA', errors: [{ instancePath: '/points/0', message: "must have required property 'y'" }] })
})
