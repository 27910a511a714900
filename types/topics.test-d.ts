// Type tests of topics: the socket's methods, the app's decorators and the adapter option.
import Fastify from 'fastify'
import websocket, { memoryAdapter, TopicHub, WebSocket, type TopicAdapter, type TopicPublication } from '../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertEqual<_T extends true> (): void {}

const app = Fastify()
await app.register(websocket, { adapter: memoryAdapter() })

app.ws('/room/:name', (socket, request) => {
  const { name } = request.params as { name: string }
  const subscribed: boolean = socket.subscribe(name)
  socket.unsubscribe(name)
  assertEqual<Equal<typeof socket.topics, ReadonlySet<string>>>()
  const is: boolean = socket.isSubscribed(name)
  const accepted: number = socket.publish(name, { hello: 'room' }, { self: true })
  socket.publish(name, Buffer.from('bytes'), { binary: true })
  void subscribed; void is; void accepted
  // @ts-expect-error: a number is not a message
  socket.publish(name, 42)
  // @ts-expect-error: self is a boolean
  socket.publish(name, 'x', { self: 'yes' })
})
app.ws('/typed', { schema: { message: { type: 'object' } } }, (socket) => {
  socket.subscribe('typed')
  socket.publish('typed', { ok: true })
})

const delivered: number = app.publish('news', { title: 'hello' })
app.publish('news', 'text', { binary: false })
const local: number = app.subscriberCount('news')
const everywhere: Promise<number> = app.presence('news')
app.websocketTopics.on('adapterError', (error: Error) => error.message)
const errors: number = app.websocketTopics.adapterErrors
void delivered; void local; void everywhere; void errors
// @ts-expect-error: a Date is not plain data
app.publish('news', new Date())

// a custom adapter implements the contract
class NullAdapter implements TopicAdapter {
  init (): void {}
  subscribe (_topic: string): void {}
  unsubscribe (_topic: string): Promise<void> { return Promise.resolve() }
  publish (_publication: TopicPublication): void {}
  subscriberCount (): Promise<number> { return Promise.resolve(0) }
  close (): Promise<void> { return Promise.resolve() }
}
await Fastify().register(websocket, { adapter: new NullAdapter() })
// @ts-expect-error: not an adapter
await Fastify().register(websocket, { adapter: { publish () {} } })

// a standalone WebSocket takes a hub of its own
declare const duplex: import('node:stream').Duplex
const standalone = new WebSocket(duplex, { topics: new TopicHub() })
standalone.subscribe('alone')
