// Echo server: text comes back as text, binary as binary, on /echo. Allows 16 MiB messages in
// up to 2^20 fragments (enough for the Autobahn TestSuite's 4 MiB-in-64-byte-fragments cases).
// Run: npx tsx examples/echo.ts   (HOST and PORT from the environment; default 127.0.0.1:3000)
import Fastify from 'fastify'
import websocket from '../lib/index.js'

export async function buildEcho () {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: process.env.LOG_LEVEL ?? 'info' } })
  await app.register(websocket, { maxPayload: 16 * 1024 * 1024, maxFragments: 1 << 20 })

  app.get('/', async () => ({ hello: 'connect a WebSocket to /echo' }))

  app.ws('/echo', (socket) => {
    socket.on('message', (data, isBinary) => {
      socket.send(isBinary ? data : data.toString('utf8'))
    })
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildEcho()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
