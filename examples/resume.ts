// Resumable streams: a feed whose subscribers get what they missed while disconnected.
// GET /feed (WebSocket) subscribes to the topic `news`: the first message is `subscribed`, then
// every publication arrives as {"type":"publication","topic","epoch","offset","data"}. A client
// that reconnects with ?resume={"news":[epoch, offset]} (URL-encoded; the last position it saw)
// gets `subscribed` with `recovered: N`, the N publications it missed in order, then live ones.
// POST /news with a JSON body publishes it.
// Run: node --import tsx examples/resume.ts   (HOST, PORT; default 127.0.0.1:3000)
import Fastify from 'fastify'
import websocket from '../lib/index.js'

export async function buildResume (env: NodeJS.ProcessEnv = process.env) {
  const app = Fastify({ logger: env.NODE_ENV === 'test' ? false : { level: env.LOG_LEVEL ?? 'info' } })
  // the last 100 publications of each topic, for 5 minutes (the defaults)
  await app.register(websocket, { history: { maxMessages: 100, maxAge: 5 * 60_000 } })

  app.ws('/feed', (socket) => {
    socket.subscribe('news') // resumes from the upgrade's `resume` parameter, if any
  })
  app.post('/news', async (request) => {
    return { delivered: app.publish('news', request.body as object) }
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildResume()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
