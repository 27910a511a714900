// Type tests of the socket API and the plugin options (compiled by `tsc --noEmit` in npm test).
import Fastify from 'fastify'
import websocket, { type WebSocket, type WebSocketPluginOptions, CloseCode } from '../lib/index.js'

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function assertEqual<_T extends true> (): void {}

const app = Fastify()

// every option, with the types the README documents
const options: WebSocketPluginOptions = {
  maxPayload: 1 << 20,
  maxFragments: 16384,
  closeTimeout: 5000,
  sharedReadBuffer: true,
  lentMessages: false,
  protocols: ['chat.v1'],
  invalidMessage: 'reply',
  perMessageDeflate: { threshold: 1024, serverMaxWindowBits: 12, clientNoContextTakeover: true },
  heartbeatInterval: 30_000,
  idleTimeout: 0,
  maxLifetime: 0,
  incompleteMessageTimeout: 60_000,
  maxBufferedAmount: 4 << 20,
  bufferedAmountPolicy: 'drop',
  maxQueuedMessages: 1024,
  maxQueuedBytes: 1 << 20,
  allowedOrigins: ['https://example.com'],
  maxConnections: 10_000
}
await app.register(websocket, options)
await app.register(websocket, { protocols: (offered, request) => offered.find((p) => p.startsWith(request.hostname)) })
await app.register(websocket, { allowedOrigins: (origin) => origin === undefined || origin.endsWith('.example.com') })
// @ts-expect-error: a policy that does not exist
await app.register(websocket, { bufferedAmountPolicy: 'block' })
// @ts-expect-error: maxPayload is a number
await app.register(websocket, { maxPayload: '1mb' })
// @ts-expect-error: sharedReadBuffer is a boolean
await app.register(websocket, { sharedReadBuffer: 'yes' })
// @ts-expect-error: lentMessages is a boolean
await app.register(websocket, { lentMessages: 1 })
app.ws('/lent', { lentMessages: true }, (socket) => { socket.on('message', (data) => { socket.send(data) }) })

app.ws('/socket', async (socket) => {
  socket.on('message', (data, isBinary) => {
    assertEqual<Equal<typeof data, Buffer>>()
    assertEqual<Equal<typeof isBinary, boolean>>()
  })
  socket.on('close', (code, reason, wasClean) => {
    assertEqual<Equal<typeof code, number>>()
    assertEqual<Equal<typeof reason, Buffer>>()
    assertEqual<Equal<typeof wasClean, boolean>>()
  })
  socket.on('dropped', (size, error) => { size.toFixed(); error.message.trim() })
  socket.on('ping', (data) => data.length)
  // @ts-expect-error: a close listener gets a number code, not a string
  socket.on('close', (code: string) => code)
  // @ts-expect-error: no such event
  socket.on('mesage', () => {})

  const accepted: boolean = socket.send('text')
  socket.send(Buffer.from('bytes'))
  socket.send(new Uint8Array(4))
  socket.send(new ArrayBuffer(4))
  socket.send({ json: true }, (error) => { if (error != null) error.message.trim() })
  if (!accepted) await socket.drained()
  const amount: number = socket.bufferedAmount
  const protocol: string = socket.protocol
  const dropped: number = socket.droppedMessages
  socket.ping('p')
  socket.pong(Buffer.from('q'))
  socket.close(CloseCode.NormalClosure, 'bye')
  socket.close(4000)
  // @ts-expect-error: the reason is a string or Buffer
  socket.close(1000, 42)
  socket.terminate()
  for await (const message of socket) {
    assertEqual<Equal<typeof message, string | Buffer>>()
  }
  void amount; void protocol; void dropped
})

function takesSocket (socket: WebSocket): number { return socket.readyState }
void takesSocket
