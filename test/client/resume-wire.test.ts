// The client's side of resumable streams, on the wire (the messages of lib/topics/history.ts),
// in Node on undici's WebSocket against a real server on 127.0.0.1 whose route writes the
// envelopes by hand: a publication's data reaches the handlers as a server message (through
// validate and onInvalid), a bad envelope goes to onInvalid, duplicates are dropped, gaps and a
// new epoch are reported, `subscribed` answers move the position and reach onRecovery, and every
// reconnection carries the last positions in the `resume` query parameter.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { WebSocket as UndiciWebSocket } from 'undici'
import websocket, { type WebSocket } from '../../lib/index.js'
import { createClient, defineContract, type AnyContract, type ClientOptions, type ContractClient, type Recovery } from '../../lib/client.js'
import { MAX_EPOCH_LENGTH, MAX_RESUME_TOPICS, RESUME_PARAMETER } from '../../lib/client/positions.js'
import { RESUME_PARAMETER as SERVER_RESUME_PARAMETER } from '../../lib/topics/history.js'
import { MAX_EPOCH_LENGTH as SERVER_MAX_EPOCH_LENGTH, MAX_RESUME_TOPICS as SERVER_MAX_RESUME_TOPICS } from '../../lib/topics/envelope.js'
import { deadline } from '../plugin/helpers.js'

const contract = defineContract({
  client: { hello: Type.Object({}) },
  server: { said: Type.Object({ text: Type.String(), server: Type.Integer() }) }
})

interface Connection { socket: WebSocket, resume: string | undefined, token: string | undefined }

/** A route that hands each connection (and the query it came with) to the test. */
async function wireServer (t: Test): Promise<{ url: string, next: () => Promise<Connection> }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const arrived: Connection[] = []
  let wake: (() => void) | undefined
  app.ws('/wire', (socket, request) => {
    const query = request.query as { resume?: string, token?: string }
    arrived.push({ socket, resume: query.resume, token: query.token })
    wake?.()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const next = (): Promise<Connection> => deadline(new Promise((resolve) => {
    const take = (): void => { const c = arrived.shift(); if (c === undefined) wake = take; else { wake = undefined; resolve(c) } }
    take()
  }), 'a connection')
  return { url: `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/wire`, next }
}

const pub = (topic: string, epoch: string, offset: number, data: unknown): string => JSON.stringify({ type: 'publication', topic, epoch, offset, data })
const said = (text: string): { type: 'said', text: string, server: number } => ({ type: 'said', text, server: 1 })

/** Send `frames`, then a said 'end', and resolve once the client handled the end: everything before it was handled. */
function script<C extends AnyContract> (client: ContractClient<C>, socket: WebSocket, frames: string[]): Promise<void> {
  const done = deadline(new Promise<void>((resolve) => {
    const stop = (client as unknown as ContractClient<typeof contract>).on('said', (m) => { if (m.text === 'end') { stop(); resolve() } })
  }), 'the end of the script')
  for (const frame of frames) socket.send(frame)
  socket.send(JSON.stringify(said('end')))
  return done
}

function open (t: Test, url: string, options: Partial<ClientOptions> = {}): ContractClient<typeof contract> {
  const client = createClient(contract, { url, WebSocket: UndiciWebSocket, reconnect: { initialDelay: 5, maxDelay: 20 }, ...options })
  t.teardown(() => client.close())
  return client
}

t.test('a publication\'s data is a server message: handlers, validate, onInvalid; bad envelopes go to onInvalid', async (t) => {
  const { url, next } = await wireServer(t)
  const invalid: Array<[unknown, string]> = []
  const validated: string[] = []
  const client = open(t, url, {
    validate: (m) => { validated.push((m as { type: string }).type); return (m as { type: string }).type !== 'said' || Number.isInteger((m as { server: unknown }).server) },
    onInvalid: (data, reason) => invalid.push([data, reason])
  })
  const texts: string[] = []
  client.on('said', (m) => texts.push(m.text))
  const { socket } = await next()
  const envelope = { type: 'publication', topic: 'a', epoch: 'E', offset: 9, data: said('x') }
  const { data: _omitted, ...noData } = envelope
  await script(client, socket, [
    pub('a', 'E', 1, said('one')),
    pub('a', 'E', 2, { type: 'unheard' }),
    pub('a', 'E', 3, { type: 'said', text: 'bad', server: 'x' }),
    pub('a', 'E', 4, 'a string'),
    pub('a', 'E', 5, { type: 'reply', id: 1, data: {} }),
    JSON.stringify({ ...envelope, offset: 0 }),
    JSON.stringify({ ...envelope, offset: 9.5 }),
    JSON.stringify({ ...envelope, offset: '9' }),
    JSON.stringify({ ...envelope, epoch: '' }),
    JSON.stringify({ ...envelope, epoch: 'e'.repeat(65) }),
    JSON.stringify({ ...envelope, topic: 7 }),
    JSON.stringify(noData),
    pub('a', 'E', 6, said('six'))
  ])
  t.same(texts, ['one', 'six', 'end'], 'only the publications whose data is a valid server message reach the handler')
  t.same(invalid.map(([, reason]) => reason), ['unknown type', 'refused by validate', 'no type', 'unknown type',
    'bad publication', 'bad publication', 'bad publication', 'bad publication', 'bad publication', 'bad publication', 'bad publication'])
  t.same(invalid[0][0], { type: 'unheard' }, 'onInvalid receives the data of a publication, not its envelope')
  t.same(invalid[4][0], { ...envelope, offset: 0 }, 'and the envelope itself when the envelope is bad')
  t.notOk(validated.includes('publication'), 'validate never sees an envelope')
  t.same(client.positions, { a: ['E', 6] }, 'every good envelope moved the position, whatever its data')
})

t.test('duplicates are dropped, gaps and a new epoch reported; subscribed answers place the stream and reach onRecovery', async (t) => {
  const { url, next } = await wireServer(t)
  const invalid: unknown[] = []
  const client = open(t, url, { onInvalid: (data, reason) => invalid.push([reason, data]) })
  const texts: string[] = []
  const recoveries: Recovery[] = []
  client.on('said', (m) => texts.push(m.text))
  client.onRecovery((r) => recoveries.push(r))
  const stopped: Recovery[] = []
  client.onRecovery((r) => stopped.push(r))()
  const { socket } = await next()
  const subscribed = (topic: string, epoch: string, offset: number, recovered: number | false, reason?: string): string =>
    JSON.stringify({ type: 'subscribed', topic, epoch, offset, recovered, ...(reason === undefined ? {} : { reason }) })
  const bad = [
    subscribed('x', 'E', 4, 5),
    subscribed('x', 'E', 4, -1),
    subscribed('x', 'E', 4, 1.5),
    subscribed('x', 'E', 4, false, 'other'),
    subscribed('x', 'E', 4, false),
    JSON.stringify({ type: 'subscribed', topic: 'x', offset: 4, recovered: 0 })
  ]
  await script(client, socket, [
    subscribed('a', 'E1', 2, 0),
    pub('a', 'E1', 3, said('a3')),
    pub('a', 'E1', 3, said('a3 again')),
    pub('a', 'E1', 2, said('a2, before the subscription')),
    pub('a', 'E1', 5, said('a5 after a gap')),
    pub('a', 'E1', 6, said('a6')),
    pub('a', 'E2', 1, said('a1 of a new epoch')),
    subscribed('b', 'F', 10, 3),
    pub('b', 'F', 8, said('b8')),
    pub('b', 'F', 9, said('b9')),
    pub('b', 'F', 10, said('b10')),
    pub('b', 'F', 10, said('b10 again')),
    pub('b', 'F', 11, said('b11 live')),
    subscribed('b', 'F', 11, 0),
    pub('b', 'F', 11, said('b11 after a second subscription')),
    subscribed('c', 'G', 4, false, 'too-old'),
    pub('c', 'G', 5, said('c5')),
    subscribed('d', 'H', 0, false, 'epoch'),
    ...bad
  ])
  t.same(texts, ['a3', 'a5 after a gap', 'a6', 'a1 of a new epoch', 'b8', 'b9', 'b10', 'b11 live', 'c5', 'end'], 'each publication once, in order')
  t.same(recoveries, [
    { topic: 'a', recovered: 0 },
    { topic: 'a', recovered: false, reason: 'gap' },
    { topic: 'a', recovered: false, reason: 'epoch' },
    { topic: 'b', recovered: 3 },
    { topic: 'b', recovered: 0 },
    { topic: 'c', recovered: false, reason: 'too-old' },
    { topic: 'd', recovered: false, reason: 'epoch' }
  ])
  t.same(stopped, [], 'the function onRecovery returned stopped that listener')
  t.same(invalid, bad.map((frame) => ['bad subscribed', JSON.parse(frame)]))
  t.same(client.positions, { a: ['E2', 1], b: ['F', 11], c: ['G', 5], d: ['H', 0] })
})

t.test('every reconnection carries the last positions in `resume`, with the query; the user\'s own resume wins; resume: false sends none', async (t) => {
  const { url, next } = await wireServer(t)
  const client = open(t, url, { query: () => ({ token: 'tok' }) })
  const first = await next()
  t.same([first.resume, first.token], [undefined, 'tok'], 'nothing to resume on the first connection')
  await script(client, first.socket, [pub('a', 'E', 1, said('a1')), pub('b/c?&=', 'F', 7, said('b7')), pub('a', 'E', 2, said('a2'))])
  first.socket.terminate()
  const second = await next()
  t.equal(second.token, 'tok', 'the query is still there')
  t.same(JSON.parse(String(second.resume)), { a: ['E', 2], 'b/c?&=': ['F', 7] }, 'each topic\'s last position, URL-encoded')
  await script(client, second.socket, [pub('a', 'E', 3, said('a3'))])
  second.socket.close(1001, 'going away')
  const third = await next()
  t.same(JSON.parse(String(third.resume)), { a: ['E', 3], 'b/c?&=': ['F', 7] }, 'and again after the next loss')

  const own = open(t, url, { query: { resume: 'mine' } })
  const mine = await next()
  await script(own, mine.socket, [pub('a', 'E', 1, said('a1'))])
  mine.socket.terminate()
  t.equal((await next()).resume, 'mine', 'a resume key in the query is sent as given')

  const off = open(t, `${url}?x=1`, { resume: false })
  const plain = await next()
  const texts: string[] = []
  off.on('said', (m) => texts.push(m.text))
  await script(off, plain.socket, [pub('a', 'E', 1, said('a1')), pub('a', 'E', 1, said('a1 again'))])
  t.same(texts, ['a1', 'end'], 'resume: false still unwraps and drops duplicates')
  plain.socket.terminate()
  t.equal((await next()).resume, undefined, 'resume: false: no resume parameter')
})

t.test('positions are kept for the last 100 topics, the bound of the resume parameter', async (t) => {
  const { url, next } = await wireServer(t)
  const client = open(t, url)
  const first = await next()
  await script(client, first.socket, Array.from({ length: 101 }, (_, i) => pub(`t${i}`, 'E', 1, said(`t${i}`))))
  const topics = Object.keys(client.positions)
  t.equal(topics.length, 100)
  t.notOk(topics.includes('t0'), 'the least recently moved topic went first')
  first.socket.terminate()
  t.equal(Object.keys(JSON.parse(String((await next()).resume))).length, 100)
})

t.test('the client speaks the wire of lib/topics/history.ts', async (t) => {
  t.equal(RESUME_PARAMETER, SERVER_RESUME_PARAMETER)
  t.equal(MAX_RESUME_TOPICS, SERVER_MAX_RESUME_TOPICS)
  t.equal(MAX_EPOCH_LENGTH, SERVER_MAX_EPOCH_LENGTH)
})

t.test('API mistakes of resume throw coded errors at the call', async (t) => {
  t.throws(() => createClient(contract, { url: 'ws://127.0.0.1:1/x', WebSocket: UndiciWebSocket, resume: 'yes' as never }), { code: 'FST_ERR_WS_CLIENT_OPTION' })
  const client = createClient(contract, { url: 'ws://127.0.0.1:1/x', WebSocket: UndiciWebSocket, reconnect: false })
  t.teardown(() => client.close())
  t.throws(() => client.onRecovery('nope' as never), { code: 'FST_ERR_WS_CLIENT_HANDLER' })
})
