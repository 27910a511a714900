// Configuration mistakes reject register()/ready() with a coded error (never a synchronous throw
// that kills the process), unknown names are refused as in TypeScript, and the @fastify/websocket
// option shape says where each setting moved. Route options still throw at the declaration.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { setZlibConcurrency, type WebSocketPluginOptions } from '../../lib/index.js'

const echo = (): void => {}

type CodedError = Error & { code?: string, moved?: Record<string, string> }

/** The error `await app.register(websocket, options)` rejects with (the instance is a thenable, not a Promise). */
async function registerError (app: FastifyInstance, options: unknown): Promise<CodedError | undefined> {
  try {
    await app.register(websocket, options as WebSocketPluginOptions)
  } catch (err) {
    return err as CodedError
  }
  return undefined
}

const adapter = {
  init () {},
  subscribe () {},
  unsubscribe () {},
  publish () {},
  async subscriberCount () { return 0 },
  async close () {}
}

// plain-JavaScript values: what TypeScript would refuse, a JavaScript app can pass
const badValues: Array<[string, Record<string, unknown>]> = [
  ['maxPayload -1', { maxPayload: -1 }],
  ['maxFragments 1.5', { maxFragments: 1.5 }],
  ['closeTimeout "5s"', { closeTimeout: '5s' }],
  ['heartbeatInterval NaN', { heartbeatInterval: NaN }],
  ['maxConnections -1', { maxConnections: -1 }],
  ['maxBufferedAmount -1', { maxBufferedAmount: -1 }],
  ['errorHandler {}', { errorHandler: {} }],
  ['protocols "chat"', { protocols: 'chat' }],
  ['protocols [1]', { protocols: [1] }],
  ['invalidMessage "explode"', { invalidMessage: 'explode' }],
  ['sharedReadBuffer "yes"', { sharedReadBuffer: 'yes' }],
  ['lentMessages "yes"', { lentMessages: 'yes' }],
  ['allowedOrigins "https://a.example"', { allowedOrigins: 'https://a.example' }],
  ['bufferedAmountPolicy "explode"', { bufferedAmountPolicy: 'explode' }],
  ['perMessageDeflate "yes"', { perMessageDeflate: 'yes' }],
  ['perMessageDeflate.level 10', { perMessageDeflate: { level: 10 } }],
  ['perMessageDeflate.serverMaxWindowBits 20', { perMessageDeflate: { serverMaxWindowBits: 20 } }],
  ['server {}', { server: {} }],
  ['preClose "later"', { preClose: 'later' }],
  ['adapter without publish', { adapter: { ...adapter, publish: undefined } }]
]

t.test('an invalid plugin option rejects await app.register() with FST_ERR_WS_INVALID_OPTION', async (t) => {
  for (const [what, options] of badValues) {
    const app = Fastify()
    const error = await registerError(app, options)
    t.equal(error?.code, 'FST_ERR_WS_INVALID_OPTION', what)
    t.match(error?.message, Object.keys(options)[0], `${what}: the message names the option`)
    t.ok(error instanceof TypeError || error instanceof RangeError, `${what}: a TypeError or RangeError`)
    await app.close()
  }
})

t.test('an invalid plugin option rejects ready() when register() is not awaited', async (t) => {
  const app = Fastify()
  app.register(websocket, { maxPayload: -1 })
  app.get('/health', async () => 'ok')
  await t.rejects(async () => { await app.ready() }, { code: 'FST_ERR_WS_INVALID_OPTION', message: /maxPayload/ })
  await app.close()
})

t.test('registering twice on one instance rejects with FST_ERR_WS_ALREADY_REGISTERED', async (t) => {
  const app = Fastify()
  await app.register(websocket)
  t.match(await registerError(app, {}), { code: 'FST_ERR_WS_ALREADY_REGISTERED', message: /already registered on this Fastify instance/ })
  await app.close()
})

t.test('unknown option names are refused, with a suggestion when one is close', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ maxPaylod: 10 }, /unknown plugin option maxPaylod \(did you mean maxPayload\?\)/],
    [{ maxpayload: 10 }, /maxpayload \(did you mean maxPayload\?\)/],
    [{ heartbeat: 1000 }, /heartbeat \(did you mean heartbeatInterval\?\)/],
    [{ perMessageDeflat: true, colour: 'red' }, /options perMessageDeflat \(did you mean perMessageDeflate\?\), colour$/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    t.match(await registerError(app, options), { code: 'FST_ERR_WS_UNKNOWN_OPTION', message }, Object.keys(options).join())
    await app.close()
  }
})

t.test('the @fastify/websocket `options` object says where each setting moved', async (t) => {
  const app = Fastify()
  const error = await registerError(app, {
    options: { maxPayload: 1024, verifyClient: () => true, clientTracking: true, perMessageDeflate: true, handleProtocols: () => 'chat', server: {}, frobnicate: 1 }
  })
  t.equal(error?.code, 'FST_ERR_WS_MOVED_OPTION')
  t.match(error?.message, /maxPayload -> the plugin option `maxPayload`/)
  t.match(error?.message, /verifyClient -> an onRequest or preValidation hook/)
  t.match(error?.message, /clientTracking -> nothing: `app.websocketConnections` always tracks/)
  t.match(error?.message, /perMessageDeflate -> the plugin option `perMessageDeflate`/)
  t.match(error?.message, /handleProtocols -> the option `protocols`/)
  t.match(error?.message, /server -> the plugin option `server`/)
  t.match(error?.message, /frobnicate -> nothing: not an option of this plugin/)
  t.same(Object.keys(error?.moved ?? {}), ['maxPayload', 'verifyClient', 'clientTracking', 'perMessageDeflate', 'handleProtocols', 'server', 'frobnicate'])
  await app.close()

  const empty = Fastify()
  t.match(await registerError(empty, { options: {} }), { code: 'FST_ERR_WS_MOVED_OPTION', message: /give its settings as plugin options/ })
  await empty.close()

  // the same names at the top level (the ws server option names) say so too
  const app2 = Fastify()
  t.match(await registerError(app2, { verifyClient: () => true }), { code: 'FST_ERR_WS_MOVED_OPTION', message: /verifyClient -> an onRequest or preValidation hook/ })
  await app2.close()

  // @fastify/websocket's own `handle` (what an upgrade to a route without a WebSocket handler
  // gets) has no counterpart: such an upgrade gets the route's HTTP answer
  const app3 = Fastify()
  t.match(await registerError(app3, { handle: () => {} }), { code: 'FST_ERR_WS_MOVED_OPTION', message: /handle -> nothing: an upgrade to a route without a WebSocket handler/ })
  await app3.close()
})

t.test('valid options, register() options and a topic adapter are accepted', async (t) => {
  const app = Fastify()
  await app.register(websocket, { prefix: '/ignored', logLevel: 'warn', maxPayload: 0, maxConnections: Infinity, adapter, preClose: async () => {} } as never)
  app.ws('/x', echo)
  await app.ready()
  t.pass('registered')
  await app.close()
})

t.test('route options throw at the declaration, with a code', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  t.throws(() => app.ws('/a', { maxPayload: -1 }, echo), { code: 'FST_ERR_WS_INVALID_OPTION', message: /maxPayload/ })
  t.throws(() => app.ws('/b', { ws: { errorHandler: {} } } as never, echo), { code: 'FST_ERR_WS_INVALID_OPTION', message: /errorHandler/ })
  t.throws(() => app.ws('/c', { ws: { maxPaylod: 1 } } as never, echo), { code: 'FST_ERR_WS_UNKNOWN_OPTION', message: /did you mean maxPayload/ })
  t.throws(() => app.ws('/d', { ws: { preClose: () => {} } } as never, echo), { code: 'FST_ERR_WS_INVALID_OPTION', message: /preClose is a plugin option/ })
  t.throws(() => app.get('/e', { websocket: true, ws: { verifyClient: () => true } } as never, echo), { code: 'FST_ERR_WS_MOVED_OPTION', message: /verifyClient/ })
  t.throws(() => app.ws('/f', { perMessageDeflate: { memLevel: 0 } }, echo), { code: 'FST_ERR_WS_INVALID_OPTION', message: /memLevel/ })
})

t.test('the other configuration calls carry the code too', async (t) => {
  t.throws(() => setZlibConcurrency(0), { code: 'FST_ERR_WS_INVALID_OPTION', name: 'RangeError' })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { perMessageDeflate: true })
  app.ws('/x', echo)
  await t.rejects(app.injectWS('/x', { perMessageDeflate: { serverMaxWindowBits: 20 } }), { code: 'FST_ERR_WS_INVALID_OPTION', name: 'RangeError' })
})
