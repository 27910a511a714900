// Type tests of send(data, [options], [cb]) (ws's signature) and of what `data` may be.
import Fastify from 'fastify'
import websocket, { type SendOptions, type WebSocket } from '../lib/index.js'

const app = Fastify()
await app.register(websocket)

interface Chat { type: 'say', text: string }

app.ws('/send', (socket) => {
  socket.on('message', (data, isBinary) => {
    socket.send(data, { binary: isBinary })
    socket.send(data, { binary: isBinary }, (error) => { if (error != null) error.message.trim() })
    socket.send(data, (error) => { if (error != null) error.message.trim() })
  })
  socket.send('text', { compress: false })
  socket.send('part', { fin: false })
  socket.send(Buffer.from('end'), { fin: true, binary: false, mask: false })
  socket.send(new Uint8Array(2), undefined, () => {})
  socket.send(new DataView(new ArrayBuffer(2)))
  socket.send({ json: true })
  socket.send([1, 'two'])
  const chat: Chat = { type: 'say', text: 'hi' }
  socket.send(chat)
  const either: string | Buffer = Math.random() > 0.5 ? 'x' : Buffer.from('x')
  socket.send(either)
  const options: SendOptions = { binary: true, compress: true, fin: true, mask: false }
  socket.send('x', options)

  // @ts-expect-error: a number is not a message (ws would send its decimal text; this plugin refuses)
  socket.send(42)
  // @ts-expect-error: a Date is not plain data
  socket.send(new Date())
  // @ts-expect-error: nor a Map
  socket.send(new Map())
  // @ts-expect-error: null is no message
  socket.send(null)
  // @ts-expect-error: options are an object
  socket.send('x', 'binary')
  // @ts-expect-error: binary is a boolean
  socket.send('x', { binary: 1 })
  // @ts-expect-error: the callback is a function
  socket.send('x', {}, 42)
})

const sockets = new Set<WebSocket>()
for (const socket of sockets) socket.send('to each', { binary: false })

// a route with a message schema: its socket takes the same options
app.ws('/typed', { schema: { message: { type: 'object' } } }, (socket) => {
  socket.send({ ok: true }, { compress: false })
  socket.send('raw', { binary: true }, () => {})
  // @ts-expect-error: binary is a boolean
  socket.send('raw', { binary: 'yes' })
})
