// The client (fastify-rfc6455/client) in Node on undici's WebSocket against a real server on
// 127.0.0.1: typed send/on, request/reply and its failures, a server restart the client survives
// (reconnecting, then sending what was queued meanwhile), closed for good on 4xxx, the bounded
// queue, subprotocols and query-string auth, validation of what arrives, and API misuse.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { WebSocket as UndiciWebSocket } from 'undici'
import websocket from '../../lib/index.js'
import { createClient, defineContract, type ContractClient } from '../../lib/client.js'
import { deadline } from '../plugin/helpers.js'
import { reach } from './helpers.js'

const contract = defineContract({
  client: {
    join: Type.Object({ room: Type.String({ minLength: 1 }) }),
    say: Type.Object({ text: Type.String() }),
    stall: Type.Object({})
  },
  server: {
    said: Type.Object({ text: Type.String(), server: Type.Integer() })
  },
  replies: {
    join: Type.Object({ members: Type.Array(Type.String()) }),
    stall: Type.Object({})
  }
})

interface Server { app: FastifyInstance, port: number, tokens: string[], protocols: Array<string | undefined> }

async function serve (generation: number, port = 0): Promise<Server> {
  const app = Fastify()
  const tokens: string[] = []
  const protocols: Array<string | undefined> = []
  await app.register(websocket)
  app.ws('/chat', {
    protocols: ['chat.v1'],
    contract,
    messageHandlers: {
      join: (message) => ({ members: [message.room, `server${generation}`] }),
      say (message, socket) { socket.send({ type: 'said', text: message.text, server: generation }) },
      stall: () => new Promise<Record<string, never>>(() => {})
    }
  }, (socket, request) => {
    tokens.push(String((request.query as { token?: string }).token))
    protocols.push(socket.protocol)
    if ((request.query as { token?: string }).token === 'banned') socket.close(4001, 'banned')
  })
  await app.listen({ host: '127.0.0.1', port })
  return { app, port: (app.server.address() as { port: number }).port, tokens, protocols }
}

function nextSaid<C extends typeof contract> (client: ContractClient<C>): Promise<{ text: string, server: number }> {
  return deadline(new Promise((resolve) => { const stop = client.on('said', (m) => { stop(); resolve(m) }) }), 'said')
}

t.test('send, on, request; a server restart mid-session; the queue while disconnected', async (t) => {
  const first = await serve(1)
  let n = 0
  const client = createClient(contract, {
    url: `ws://127.0.0.1:${first.port}/chat`,
    WebSocket: UndiciWebSocket,
    protocols: ['chat.v1'],
    query: () => ({ token: `t${++n}` }),
    reconnect: { initialDelay: 10, maxDelay: 100 }
  })
  t.teardown(() => client.close())
  const states: string[] = []
  client.onState((s) => states.push(s.state))
  t.same(await reach(client, 'open'), { state: 'open', protocol: 'chat.v1' }, 'the subprotocol passes through')
  t.same(first.tokens, ['t1'], 'the query reaches the server')

  const said = nextSaid(client)
  t.equal(client.send('say', { text: 'hello' }), true)
  t.same(await said, { type: 'said', text: 'hello', server: 1 })
  t.same(await client.request('join', { room: 'lobby' }), { members: ['lobby', 'server1'] }, 'the reply resolves the request')
  await t.rejects(client.request('join', { room: '' }), { code: 'WS_ERR_MESSAGE_SCHEMA', errors: [{ instancePath: '/room' }] }, 'a refused request rejects with the server\'s refusal')
  const stalled = t.rejects(client.request('stall', {}), { code: 'WS_ERR_CLIENT_DISCONNECTED' }, 'a request in flight fails when its connection closes')

  // the server goes away (1001) and comes back on the same port
  const reconnecting = reach(client, 'reconnecting')
  await first.app.close()
  const lost = await reconnecting
  t.match(lost, { state: 'reconnecting', attempt: 1, code: 1001 })
  await stalled
  t.equal(client.send('say', { text: 'queued while away' }), true, 'queued')
  const queuedRequest = client.request('join', { room: 'again' })
  const second = await serve(2, first.port)
  t.teardown(() => second.app.close())
  const saidAgain = nextSaid(client)
  await reach(client, 'open')
  t.same(await saidAgain, { type: 'said', text: 'queued while away', server: 2 }, 'the queue is sent once reconnected')
  t.same(await queuedRequest, { members: ['again', 'server2'] }, 'a request queued while away gets its reply')
  t.ok(second.tokens.length >= 1 && second.tokens.every((token) => /^t\d+$/.test(token) && token !== 't1'), 'the query function gives each connection a fresh token')
  t.same(second.protocols, second.tokens.map(() => 'chat.v1'))
  t.ok(states.indexOf('reconnecting') > 0 && states.lastIndexOf('open') > states.indexOf('reconnecting'), 'states: open, reconnecting, open')
})

t.test('closed for good on a 4xxx close: no reconnection, sends refused, requests fail', async (t) => {
  const server = await serve(1)
  t.teardown(() => server.app.close())
  const client = createClient(contract, { url: `ws://127.0.0.1:${server.port}/chat`, WebSocket: UndiciWebSocket, query: { token: 'banned' }, reconnect: { initialDelay: 1 } })
  t.same(await reach(client, 'closed'), { state: 'closed', code: 4001, reason: 'banned' })
  t.equal(client.send('say', { text: 'x' }), false)
  await t.rejects(client.request('join', { room: 'r' }), { code: 'WS_ERR_CLIENT_CLOSED' })
  t.same(server.tokens, ['banned'], 'one connection only')
})

t.test('the queue is bounded; a request times out; close() fails what is pending', async (t) => {
  const server = await serve(1)
  t.teardown(() => server.app.close())
  const client = createClient(contract, { url: `ws://127.0.0.1:${server.port}/chat`, WebSocket: UndiciWebSocket, queueLimit: 2, requestTimeout: 20 })
  t.equal(client.send('say', { text: '1' }), true)
  t.equal(client.send('say', { text: '2' }), true)
  t.equal(client.send('say', { text: '3' }), false, 'over queueLimit before the connection opened')
  t.equal(client.queued, 2)
  await reach(client, 'open')
  await t.rejects(client.request('stall', {}), { code: 'WS_ERR_CLIENT_TIMEOUT' })
  const pending = client.request('stall', {}, { timeout: 60000 })
  client.close()
  await t.rejects(pending, { code: 'WS_ERR_CLIENT_CLOSED' })
  t.equal(client.state.state, 'closed')
})

t.test('validate drops what does not match to onInvalid', async (t) => {
  const server = await serve(7)
  t.teardown(() => server.app.close())
  const check = Compile(Type.Object({ type: Type.Literal('said'), server: Type.Literal(1) }) as never)
  const invalid: string[] = []
  const client = createClient(contract, {
    url: `ws://127.0.0.1:${server.port}/chat`,
    WebSocket: UndiciWebSocket,
    validate: (m) => (m as { type?: string }).type !== 'said' || check.Check(m),
    onInvalid: (_data, reason) => invalid.push(reason)
  })
  t.teardown(() => client.close())
  await reach(client, 'open')
  let got = 0
  client.on('said', () => got++)
  client.send('say', { text: 'x' })
  t.same(await client.request('join', { room: 'r' }), { members: ['r', 'server7'] }, 'the reply after it: the said message was handled first')
  t.same(invalid, ['refused by validate'])
  t.equal(got, 0)
})

t.test('API mistakes throw coded errors at the call', async (t) => {
  if (globalThis.WebSocket === undefined) {
    // Node 20: no global WebSocket, and none passed
    t.throws(() => createClient(contract, { url: 'ws://127.0.0.1:1/x', WebSocket: undefined, reconnect: false }), { code: 'FST_ERR_WS_CLIENT_NO_WEBSOCKET' })
  } else {
    // Node 22 and later: the global WebSocket serves when none is passed
    const global = createClient(contract, { url: 'ws://127.0.0.1:1/x', reconnect: false })
    t.ok(global, 'the global WebSocket is used')
    global.close()
  }
  t.throws(() => createClient({} as never, { url: 'ws://x' }), { code: 'FST_ERR_WS_CLIENT_CONTRACT' })
  t.throws(() => createClient(contract, { url: 'ws://x', WebSocket: UndiciWebSocket, queueLimit: -1 }), { code: 'FST_ERR_WS_CLIENT_OPTION' })
  const client = createClient(contract, { url: 'ws://127.0.0.1:1/x', WebSocket: UndiciWebSocket, reconnect: false })
  t.throws(() => client.send('shout' as never, {} as never), { code: 'FST_ERR_WS_CLIENT_UNKNOWN_TYPE' })
  t.throws(() => client.request('say' as never, { text: 'x' } as never), { code: 'FST_ERR_WS_CLIENT_NOT_A_REQUEST' })
  t.throws(() => client.on('shouted' as never, () => {}), { code: 'FST_ERR_WS_CLIENT_UNKNOWN_TYPE' })
  t.throws(() => client.close(1001), { code: 'FST_ERR_WS_CLIENT_CLOSE_CODE' }, 'a code the WHATWG close() refuses')
  t.match(await reach(client, 'closed'), { state: 'closed', code: 1006 }, 'reconnect: false gives up at the first loss')
})

t.test('what a server sends never throws in the client: junk goes to onInvalid', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.ws('/junk', (socket) => {
    socket.send('not json')
    socket.send(Buffer.from([1, 2, 3]))
    socket.send('null')
    socket.send({ no: 'type' })
    socket.send({ type: 'reply', id: 999, data: {} })
    socket.send({ type: 'unheard' })
    socket.send({ type: 'said', text: 'last', server: 0 })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const reasons: string[] = []
  const client = createClient(contract, {
    url: `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/junk`,
    WebSocket: UndiciWebSocket,
    onInvalid: (_data, reason) => reasons.push(reason)
  })
  t.teardown(() => client.close())
  t.same(await nextSaid(client), { type: 'said', text: 'last', server: 0 }, 'still listening after the junk')
  t.same(reasons, ['not JSON', 'binary message', 'no type', 'no type', 'unknown type'], 'a reply to no request is ignored')
})
