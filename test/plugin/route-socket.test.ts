// The README's TypeScript example, run: a `websocket: true` route declared with app.route(), whose
// message-schema socket goes into a Set<WebSocket> and to broadcast() with `except`. (Its types,
// inferred, are checked in types/message-socket.test-d.ts; this program also holds
// @fastify/websocket's declarations, so the handler's parameter is annotated here.) Real sockets:
// `ws` clients on 127.0.0.1.
import t from 'tap'
import Fastify from 'fastify'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import WS from 'ws'
import websocket, { broadcast, type MessageSocket, type WebSocket } from '../../lib/index.js'
import { deadline, until } from './helpers.js'

t.test('app.route({ websocket: true }): the validated socket is a WebSocket member of a set and of broadcast()', async (t) => {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
  await app.register(websocket)
  const members = new Set<WebSocket>()
  app.route({
    method: 'GET',
    url: '/room',
    websocket: true,
    schema: { message: Type.Object({ text: Type.String() }) },
    handler: (socket: MessageSocket<{ text: string }>) => {
      members.add(socket)
      socket.on('message', (message) => broadcast(members, { text: message.text }, { except: socket }))
      socket.on('close', () => members.delete(socket))
    }
  })
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())

  const open = async (): Promise<WS> => {
    const client = new WS(`${address.replace('http', 'ws')}/room`)
    await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'open')
    return client
  }
  const ann = await open()
  const ben = await open()
  await until(() => members.size === 2, 'both members')
  const received: string[] = []
  ann.on('message', (data) => received.push(`ann ${String(data)}`))
  const toBen = deadline(new Promise<string>((resolve) => ben.once('message', (data) => resolve(String(data)))), 'the broadcast')
  ann.send(JSON.stringify({ text: 'hello' }))
  t.same(JSON.parse(await toBen), { text: 'hello' }, 'the other member receives it')

  // the sender was excluded: its next message is the answer to ben's, not its own echo
  const toAnn = deadline(new Promise<string>((resolve) => ann.once('message', (data) => resolve(String(data)))), 'the reply')
  ben.send(JSON.stringify({ text: 'hi ann' }))
  t.same(JSON.parse(await toAnn), { text: 'hi ann' })
  t.same(received, ['ann {"text":"hi ann"}'], 'ann never got her own message')

  ann.close()
  await until(() => members.size === 1, 'the closed member to leave the set')
  ben.terminate()
})
