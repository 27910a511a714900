// Interop: Debian's Chromium (headless, driven by playwright-core) negotiates permessage-deflate
// with this server and exchanges compressed messages both ways. .ci/run installs chromium.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { liveZlibStreams } from '../../lib/connection/deflate.js'
import { startServer } from './helpers.js'

const CHROMIUM = '/usr/bin/chromium'

const PAGE = `<!doctype html><meta charset="utf-8"><title>pmd</title><script>
window.result = (async () => {
  const ws = new WebSocket('ws://' + location.host + '/watched')
  ws.binaryType = 'arraybuffer'
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('ws error')) })
  const big = JSON.stringify(Array.from({ length: 2000 }, (_, i) => ({ id: i, name: 'user-' + (i % 50), ok: i % 2 === 0 })))
  const bin = new Uint8Array(50000); for (let i = 0; i < bin.length; i++) bin[i] = (i >> 3) & 0xff
  const sent = ['small', big, 'héllo ✓'.repeat(500), bin]
  const got = []
  const done = new Promise((resolve) => { ws.onmessage = (e) => { got.push(e.data); if (got.length === sent.length) resolve() } })
  for (const m of sent) ws.send(m)
  await done
  const same = got.map((g, i) => {
    const s = sent[i]
    if (typeof s === 'string') return g === s
    const a = new Uint8Array(g); return a.length === s.length && a.every((v, k) => v === s[k])
  })
  const closed = new Promise((resolve) => { ws.onclose = (e) => resolve({ code: e.code, wasClean: e.wasClean }) })
  ws.close(1000, 'done')
  return { extensions: ws.extensions, same, close: await closed }
})()
</script>`

t.test('Chromium negotiates permessage-deflate and round-trips compressed messages', async (t) => {
  // zlib streams alive when each message reaches the application: an inflater exists only if
  // the browser really sent it compressed (RSV1)
  const zlibAtMessage: number[] = []
  const extensions: string[] = []
  const srv = await startServer({ perMessageDeflate: { threshold: 64 } }, (app) => {
    app.get('/', async (_req, reply) => reply.type('text/html').send(PAGE))
    app.ws('/watched', (socket) => {
      extensions.push(socket.extensions)
      socket.on('message', (data: Buffer, binary: boolean) => {
        zlibAtMessage.push(liveZlibStreams())
        socket.send(binary ? data : data.toString())
      })
    })
  })
  t.teardown(() => srv.app.close())
  const profile = mkdtempSync(join(tmpdir(), 'pmd-chromium-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
    timeout: 60_000
  })
  t.teardown(() => context.close())
  const page = await context.newPage()
  await page.goto(`http://127.0.0.1:${srv.port}/`)
  const result = await page.evaluate('window.result', { timeout: 30_000 }) as { extensions: string, same: boolean[], close: { code: number, wasClean: boolean } }
  t.equal(result.extensions, 'permessage-deflate', 'ws.extensions in the browser')
  t.match(extensions[0], /^permessage-deflate/, 'the server answered the offer')
  t.ok(zlibAtMessage.length === 4 && zlibAtMessage[0] >= 1, `the browser compressed its first message (zlib streams: ${zlibAtMessage.join(',')})`)
  t.same(result.same, [true, true, true, true], 'each message came back intact')
  t.same(result.close, { code: 1000, wasClean: true })
})
