// A typical @fastify/websocket application, written the way its README teaches. The compat test
// runs this file unchanged with @fastify/websocket and with fastify-rfc6455 and expects the same
// behaviour from both: only the plugin passed to buildApp() differs.
import Fastify from 'fastify'

export async function buildApp (websocket) {
  const app = Fastify()
  const seen = { hiddenRoutes: [], upgradeHooks: [], errors: [], initialized: 0 }
  const clients = new Set()

  await app.register(websocket, {
    errorHandler: function (error, socket) {
      seen.errors.push(error.message)
      socket.terminate()
    }
  })

  // what @fastify/swagger does (registered after the WebSocket plugin): skip hidden routes
  app.addHook('onRoute', (route) => {
    if (route.schema && route.schema.hide) seen.hiddenRoutes.push(route.url)
  })

  app.register(async function (fastify) {
    // an access-log style hook: WebSocket routes always carry a schema with hide: true
    fastify.addHook('onRequest', async (request) => {
      if (request.ws) seen.upgradeHooks.push(`${request.routeOptions.url} hide=${request.routeOptions.schema.hide}`)
    })
    fastify.addHook('preValidation', async (request, reply) => {
      if (request.headers['api-key'] !== 'some-random-key') {
        return reply.code(401).send()
      }
    })

    // echo: text back as text, binary back as binary, ws's own send signature
    fastify.get('/echo', { websocket: true }, (socket, req) => {
      socket.on('message', (data, isBinary) => {
        socket.send(data, { binary: isBinary })
      })
    })

    // a room: every message goes to every other client, with a send callback
    fastify.get('/room', { websocket: true }, (socket) => {
      clients.add(socket)
      socket.on('close', () => clients.delete(socket))
      socket.on('message', (data, isBinary) => {
        for (const client of clients) {
          if (client !== socket && client.readyState === 1) {
            client.send(data, { binary: isBinary }, (err) => { if (err) seen.errors.push(err.message) })
          }
        }
      })
      socket.send('joined')
    })

    // an async handler whose rejection goes to the errorHandler
    fastify.get('/fails', { websocket: true }, async () => {
      throw new Error('handler failed')
    })
  })

  app.register(async function (fastify) {
    fastify.addHook('preValidation', async (request, reply) => {
      if (request.headers['api-key'] !== 'some-random-key') {
        return reply.code(401).send()
      }
    })
    // one URL, both protocols
    fastify.route({
      method: 'GET',
      url: '/hello',
      handler: (req, reply) => { reply.send({ hello: 'world' }) },
      wsHandler: (socket) => {
        socket.send('hello client')
        socket.once('message', () => socket.close())
      }
    })
  })

  app.get('/health', async () => ({ ok: true }))
  return { app, seen, clients }
}
