// The examples, exercised as a user would: real sockets, real clients.
import t from 'tap'
import { WebSocket as WsClient } from 'ws'
import { buildEcho } from '../../examples/echo.js'
import { buildChat } from '../../examples/chat/server.js'
import { buildAuth } from '../../examples/auth.js'
import { buildTicker } from '../../examples/graceful-shutdown.js'

process.env.NODE_ENV = 'test'

function open (url: string): Promise<WsClient> {
  const ws = new WsClient(url)
  return new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('error', reject) })
}

/** Collect JSON messages of a client; `next(type)` waits for the next message of that type. */
function inbox (ws: WsClient) {
  const seen: Array<Record<string, unknown>> = []
  const waiters: Array<{ type: string, resolve: (m: Record<string, unknown>) => void }> = []
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString()) as Record<string, unknown>
    const i = waiters.findIndex((w) => w.type === m.type)
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m)
    else seen.push(m)
  })
  return {
    next (type: string): Promise<Record<string, unknown>> {
      const i = seen.findIndex((m) => m.type === type)
      if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0])
      return new Promise((resolve) => waiters.push({ type, resolve }))
    }
  }
}

t.test('echo example: 16 MiB binary and text round trip', async (t) => {
  const app = await buildEcho()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const ws = await open(`ws://127.0.0.1:${port}/echo`)
  const big = Buffer.alloc(16 * 1024 * 1024, 7)
  const replies: Array<[Buffer, boolean]> = []
  const done = new Promise<void>((resolve) => ws.on('message', (d: Buffer, b: boolean) => { replies.push([d, b]); if (replies.length === 2) resolve() }))
  ws.send(big)
  ws.send('ünïcode ✓')
  await done
  t.equal(replies[0][1], true)
  t.ok(replies[0][0].equals(big), '16 MiB binary echoed intact')
  t.same([replies[1][0].toString(), replies[1][1]], ['ünïcode ✓', false])
  ws.close()
})

t.test('chat example: two clients join a room, talk, see presence, leave', async (t) => {
  const app = await buildChat()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)

  const ann = await open(`ws://127.0.0.1:${port}/chat`)
  const bob = await open(`ws://127.0.0.1:${port}/chat`)
  const annIn = inbox(ann)
  const bobIn = inbox(bob)
  ann.send(JSON.stringify({ type: 'join', room: 'r1', name: 'ann', id: 1 }))
  t.same(await annIn.next('reply'), { type: 'reply', id: 1, data: { room: 'r1', name: 'ann', members: ['ann'] } }, 'join is a request: its reply')
  t.same((await annIn.next('presence')).members, ['ann'])
  const docs = await app.inject('/asyncapi.json')
  t.match(docs.json(), { asyncapi: '3.0.0', channels: { chat: { address: '/chat' } } }, 'the AsyncAPI document')
  t.match((await app.inject('/client.js')).headers['content-type'], /javascript/, 'the page\'s client bundle')
  bob.send(JSON.stringify({ type: 'join', room: 'r1', name: 'bob' }))
  t.same((await bobIn.next('presence')).members, ['ann', 'bob'])
  t.same((await annIn.next('presence')).members, ['ann', 'bob'])
  bob.send(JSON.stringify({ type: 'say', text: 'hello ann' }))
  t.match(await annIn.next('message'), { from: 'bob', text: 'hello ann', room: 'r1' })
  bob.send('not json')
  t.match(await bobIn.next('error'), { code: 'WS_ERR_MESSAGE_NOT_JSON' })
  bob.send(JSON.stringify({ type: 'say', text: '' }))
  t.match(await bobIn.next('error'), { code: 'WS_ERR_MESSAGE_SCHEMA' }, 'the schema refuses an empty text')
  bob.send(JSON.stringify({ type: 'shout', text: 'x' }))
  t.match(await bobIn.next('error'), { code: 'WS_ERR_MESSAGE_SCHEMA' }, 'an unknown type is refused')
  bob.send(JSON.stringify({ type: 'say', text: 'still here' }))
  t.match(await annIn.next('message'), { from: 'bob', text: 'still here' }, 'invalid messages do not end the connection')
  bob.close()
  t.same((await annIn.next('presence')).members, ['ann'], 'a closed client leaves the room')
  ann.close()
})

t.test('auth example: 401 without a token, greeting with one', async (t) => {
  const app = await buildAuth()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const refused = new WsClient(`ws://127.0.0.1:${port}/private?token=wrong`)
  refused.on('error', () => {}) // ws reports the aborted handshake as an error as well
  const status = await new Promise<number>((resolve) => refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
  t.equal(status, 401, 'the hook refuses the upgrade with 401')
  refused.terminate()
  // the greeting can arrive in the same read as the 101: listen before 'open'
  const ws = new WsClient(`ws://127.0.0.1:${port}/private?token=s3cret`)
  const greeting = await new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())))
  t.equal(greeting, 'hello ann')
  ws.close()
})

t.test('graceful shutdown example: app.close() closes clients with 1001', async (t) => {
  const app = await buildTicker()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const clients = await Promise.all([open(`ws://127.0.0.1:${port}/ticks`), open(`ws://127.0.0.1:${port}/ticks`)])
  const codes = Promise.all(clients.map((c) => new Promise<number>((resolve) => c.once('close', (code: number) => resolve(code)))))
  await app.close()
  t.same(await codes, [1001, 1001])
  t.equal(app.websocketConnections.size, 0, 'no connection left open')
})
