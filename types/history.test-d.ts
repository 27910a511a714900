// Type tests of topic history: the plugin option, subscribe's `since`, an adapter's own store.
import Fastify from 'fastify'
import websocket, { MemoryTopicAdapter, MemoryTopicHistory, type HistoryOptions, type HistoryPluginOptions, type TopicAdapter, type TopicHistory } from '../lib/index.js'

const app = Fastify()
const history: HistoryPluginOptions = { maxMessages: 50, maxAge: Infinity, topics: (topic) => topic.startsWith('feed:'), maxBytes: 1 << 20 }
await app.register(websocket, { history })
await app.register(websocket, { history: true })
// @ts-expect-error: maxMessages is a number
await app.register(websocket, { history: { maxMessages: '100' } })
// @ts-expect-error: topics is a predicate
await app.register(websocket, { history: { topics: ['a'] } })

app.ws('/feed', (socket) => {
  const subscribed: boolean = socket.subscribe('feed:a', { since: { epoch: 'e', offset: 3 } })
  socket.subscribe('feed:b')
  void subscribed
  // @ts-expect-error: since is { epoch, offset }
  socket.subscribe('feed:c', { since: 3 })
})

// an adapter may bring a store of its own
class StoreAdapter extends MemoryTopicAdapter implements TopicAdapter {
  history (options: HistoryOptions): TopicHistory {
    return new MemoryTopicHistory(options)
  }
}
await app.register(websocket, { adapter: new StoreAdapter(), history: true })
