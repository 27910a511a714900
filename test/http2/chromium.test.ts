// Headless Chromium loads examples/http2.ts's page over HTTP/2 (TLS, certificate errors ignored
// for the test) and its WebSocket goes over the same HTTP/2 connection: the server records what
// it saw (the HTTP version, the method on the wire, the session of each request), not assumed.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import type { Http2ServerRequest, Http2Session } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { buildHttp2 } from '../../examples/http2.js'
import { selfSigned } from './helpers.js'

const CHROMIUM = '/usr/bin/chromium'

interface Seen { url: string, httpVersion: string, protocol: string | string[] | undefined, session: Http2Session | undefined }

t.test('Chromium: the page and its WebSocket share one HTTP/2 connection (extended CONNECT)', async (t) => {
  process.env.NODE_ENV = 'test'
  const app = await buildHttp2(selfSigned())
  const seen: Seen[] = []
  app.addHook('onRequest', async (request) => {
    const raw = request.raw as Http2ServerRequest
    // an extended CONNECT (routed as the GET it replaces) carries :protocol (RFC 8441 §4)
    seen.push({ url: request.url, httpVersion: raw.httpVersion, protocol: raw.headers[':protocol'], session: raw.stream?.session })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }

  const profile = mkdtempSync(join(tmpdir(), 'h2-chromium-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    ignoreHTTPSErrors: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--ignore-certificate-errors'],
    timeout: 60_000
  })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const response = await page.goto(`https://127.0.0.1:${port}/`)
  t.equal(response?.status(), 200)
  const result = await page.evaluate('window.result', { timeout: 30_000 }) as { text: string, binary: number[], close: { code: number, wasClean: boolean } }
  t.same(result, { text: 'hello over https:', binary: [1, 2, 3, 250], close: { code: 1000, wasClean: true } }, 'the echo, as the page saw it')

  const pageRequest = seen.find((s) => s.url === '/')
  const wsRequest = seen.find((s) => s.url === '/echo')
  t.equal(pageRequest?.httpVersion, '2.0', 'the page came over HTTP/2')
  t.equal(wsRequest?.httpVersion, '2.0', 'the WebSocket came over HTTP/2')
  t.equal(wsRequest?.protocol, 'websocket', 'as an extended CONNECT with :protocol websocket')
  t.ok(pageRequest?.session !== undefined && pageRequest.session === wsRequest?.session, 'on the same HTTP/2 session (TLS connection) as the page')
  t.equal(seen.filter((s) => s.protocol !== undefined).length, 1, 'one extended CONNECT in all')
})
