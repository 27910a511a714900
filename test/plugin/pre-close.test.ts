// The `preClose` plugin option: run on app.close() before the plugin closes the remaining
// connections with 1001 (async or with a done callback); a failing one is logged and the
// connections are closed all the same.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type WebSocketPluginOptions } from '../../lib/index.js'
import { deadline, logCapture } from './helpers.js'
import { open } from './ws-clients.js'

/** An app with one idle route and one connected `ws` client that records what it receives. */
async function connected (options: WebSocketPluginOptions, logs?: ReturnType<typeof logCapture>) {
  const app = Fastify(logs === undefined ? {} : { logger: { level: 'error', stream: logs.stream } })
  await app.register(websocket, options)
  app.ws('/room', () => {})
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const client = await open(`ws://127.0.0.1:${port}/room`)
  const seen: string[] = []
  client.on('message', (data: Buffer) => seen.push(`message ${data.toString()}`))
  const closed = deadline(new Promise<void>((resolve) => {
    client.once('close', (code: number) => { seen.push(`close ${code}`); resolve() })
  }), 'the client close')
  return { app, seen, closed }
}

function sayGoodbye (app: FastifyInstance): void {
  for (const socket of app.websocketConnections) socket.send('goodbye')
}

t.test('an async preClose runs first, with the open connections, then they get 1001', async (t) => {
  let self: unknown
  let open = -1
  const { app, seen, closed } = await connected({
    async preClose () {
      self = this
      open = this.websocketConnections.size
      await Promise.resolve()
      sayGoodbye(this)
    }
  })
  await deadline(app.close(), 'app.close() to resolve')
  await closed
  t.ok(self === app, 'this is the registration\'s instance')
  t.equal(open, 1, 'the connection is still open in preClose')
  t.same(seen, ['message goodbye', 'close 1001'])
})

t.test('a preClose with a done callback is waited for', async (t) => {
  const { app, seen, closed } = await connected({
    preClose (done) {
      setImmediate(() => { sayGoodbye(this); done() })
    }
  })
  await deadline(app.close(), 'app.close() to resolve')
  await closed
  t.same(seen, ['message goodbye', 'close 1001'])
})

t.test('a preClose that throws or rejects is logged; the connections still get 1001 and close resolves', async (t) => {
  for (const preClose of [
    function () { throw new Error('sync goodbye failed') },
    async function () { throw new Error('async goodbye failed') }
  ]) {
    const logs = logCapture()
    const { app, seen, closed } = await connected({ preClose }, logs)
    await deadline(app.close(), 'app.close() to resolve')
    await closed
    t.same(seen, ['close 1001'])
    t.match(logs.lines, [{ level: 50, msg: 'websocket preClose failed', err: { message: /goodbye failed/ } }])
  }
})
