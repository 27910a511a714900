// Graceful shutdown: on SIGINT/SIGTERM, app.close() sends every open WebSocket a Close frame with
// 1001 (Going Away) and resolves once all are closed (or terminated after closeTimeout).
// Run: npx tsx examples/graceful-shutdown.ts, connect a client to /ticks, then press Ctrl-C.
import Fastify from 'fastify'
import websocket from '../lib/index.js'

export async function buildTicker () {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: 'info' } })
  await app.register(websocket, { closeTimeout: 2000 })
  app.ws('/ticks', (socket) => {
    const timer = setInterval(() => socket.send(JSON.stringify({ now: Date.now() })), 1000)
    socket.on('close', () => clearInterval(timer))
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildTicker()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      app.log.info(`${signal}: closing ${app.websocketConnections.size} WebSocket(s) with 1001`)
      app.close().then(() => process.exit(0), (err) => { app.log.error(err); process.exit(1) })
    })
  }
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
