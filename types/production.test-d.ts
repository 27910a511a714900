// Type tests of the production API: metrics, budgets, credentials deadline, same-origin check.
import Fastify from 'fastify'
import websocket, { type WebSocketMetricsSnapshot, type WebSocketRouteMetrics, CredentialsCloseCode } from '../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertEqual<_T extends true> (): void {}

const app = Fastify()
await app.register(websocket, {
  allowedOrigins: 'same-origin',
  maxConnectionsPerAddress: 20,
  inboundBudget: { messagesPerSecond: 50, bytesPerSecond: 1 << 16, burst: 2, policy: 'drop' }
})
app.ws('/x', { allowedOrigins: ['same-origin', 'https://app.example'], inboundBudget: { messagesPerSecond: 5 } }, (socket) => {
  socket.expireAt(Date.now() + 60_000)
  socket.expireAt(new Date())
  socket.expireAt(null)
  assertEqual<Equal<typeof socket.expiresAt, number | null>>()
  assertEqual<Equal<typeof socket.overBudget, 'messages' | 'bytes' | null>>()
  socket.on('budgetExceeded', (size, error) => {
    assertEqual<Equal<typeof size, number>>()
    assertEqual<Equal<typeof error, Error>>()
  })
  // @ts-expect-error: a deadline is a Date, a number or null
  socket.expireAt('tomorrow')
  socket.close(CredentialsCloseCode, 'credentials expired')
})
// @ts-expect-error: a budget policy that does not exist
await app.register(websocket, { inboundBudget: { policy: 'throttle' } })
// @ts-expect-error: only 'same-origin' is a keyword
await app.register(websocket, { allowedOrigins: 'any' })

const snapshot = app.websocketMetrics()
assertEqual<Equal<typeof snapshot, WebSocketMetricsSnapshot>>()
assertEqual<Equal<typeof snapshot.routes[string], WebSocketRouteMetrics>>()
assertEqual<Equal<typeof snapshot.total.compressionRatio, number | null>>()
