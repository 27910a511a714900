// Authentication in an onRequest hook: the upgrade is refused with 401 before any 101, and the
// WebSocket handler sees the user the hook attached to the request.
// Run: npx tsx examples/auth.ts, then connect to ws://127.0.0.1:3000/private?token=s3cret
import Fastify, { type FastifyRequest } from 'fastify'
import websocket from '../lib/index.js'

declare module 'fastify' {
  interface FastifyRequest { user: string | null }
}

const tokens = new Map([['s3cret', 'ann']])

export async function buildAuth () {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: 'info' } })
  await app.register(websocket)
  app.decorateRequest('user', null)

  app.register(async (secured) => {
    // browsers cannot set headers on a WebSocket: accept the token from the query string too
    secured.addHook('onRequest', async (request: FastifyRequest<{ Querystring: { token?: string } }>, reply) => {
      const token = request.query.token ?? request.headers.authorization?.replace(/^Bearer /, '')
      const user = token === undefined ? undefined : tokens.get(token)
      if (user === undefined) return reply.code(401).send({ error: 'Unauthorized' })
      request.user = user
    })
    secured.ws('/private', (socket, request) => {
      socket.send(`hello ${request.user}`)
    })
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildAuth()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
