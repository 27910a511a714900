/**
 * The conformance groups 1-7, 9 and 10 (test/conformance/) over HTTP/2: the same case files,
 * their server an `http2: true` app and each client an extended CONNECT stream (RFC 8441 §5:
 * "the peers should proceed with the WebSocket Protocol [RFC6455] using the HTTP/2 stream ... as
 * if it were the TCP connection"), so every frame-level assertion holds unchanged.
 */
process.env.CONFORMANCE_TRANSPORT = 'h2c'
// seven case files in one: 16 s alone, past the suite's 120 s per file on a loaded machine (each
// case still waits on events with its own deadlines)
const { default: tap } = await import('tap')
tap.setTimeout(600_000)
await import('../conformance/case-1-framing.test.js')
await import('../conformance/case-2-ping-pong.test.js')
await import('../conformance/case-3-4-reserved.test.js')
await import('../conformance/case-5-fragmentation.test.js')
await import('../conformance/case-6-utf8.test.js')
await import('../conformance/case-7-close.test.js')
await import('../conformance/case-9-10-limits.test.js')

const { default: t } = await import('tap')
const { echoServer } = await import('../conformance/helpers.js')
t.test('the conformance clients above ran over an HTTP/2 stream', async (t) => {
  const server = await echoServer()
  t.teardown(() => server.app.close())
  const client = await server.connect()
  t.ok(client.stream !== undefined, 'an extended CONNECT stream')
  t.equal(client.status, 200)
  await client.closeAndRest()
})
