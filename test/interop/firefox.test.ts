/**
 * Interop with a second real browser: Debian's Firefox ESR (headless), with no driver at all.
 * Firefox opens a page served by the app under test; the page talks WebSocket to the app and
 * posts what it saw to /result, which the test waits for. .ci/run installs firefox-esr.
 *
 * Covered: permessage-deflate negotiated by Firefox's own offer; text (ASCII, 2-, 3- and 4-byte
 * UTF-8) and binary at the length encodings' edges and 1 MiB, echoed; the empty message both
 * ways, also right after a compressed one (RFC 7692 §7.2.3.6: one 0x00 octet, not an empty
 * compressed frame); a server close with a code and reason; a page close seen by the server.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { deadline } from './helpers.js'

const FIREFOX = '/usr/bin/firefox-esr'

const PAGE = `<!doctype html><meta charset="utf-8"><title>firefox interop</title><script>
const report = (body) => fetch('/result', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
const text = (n) => { let s = ''; const units = ['a', 'é', '✓', '😀']; let i = 0; while (s.length < n) s += units[i++ % 4]; return s.slice(0, n) }
const bytes = (n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff; return b }
const sameBytes = (a, b) => a.length === b.length && a.every((v, k) => v === b[k])
function open (path) {
  const ws = new WebSocket('ws://' + location.host + path)
  ws.binaryType = 'arraybuffer'
  const inbox = []
  let wake = null
  ws.onmessage = (e) => { inbox.push(e.data); if (wake) { const w = wake; wake = null; w() } }
  const closed = new Promise((resolve) => { ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, wasClean: e.wasClean }) })
  const next = async () => { while (inbox.length === 0) await new Promise((r) => { wake = r }); return inbox.shift() }
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve({ ws, next, closed })
    ws.onerror = () => reject(new Error('WebSocket error on ' + path))
  })
}
(async () => {
  const out = { echoes: [], pushed: [], serverClose: null, extensions: '' }
  const echo = await open('/echo')
  out.extensions = echo.ws.extensions
  for (const n of [0, 1, 125, 126, 127, 65535, 65536]) {
    const s = text(n)
    echo.ws.send(s)
    out.echoes.push(['text', n, (await echo.next()) === s])
    const b = bytes(n)
    echo.ws.send(b)
    out.echoes.push(['binary', n, sameBytes(new Uint8Array(await echo.next()), b)])
  }
  const mib = bytes(1 << 20)
  echo.ws.send(mib)
  out.echoes.push(['binary', 1 << 20, sameBytes(new Uint8Array(await echo.next()), mib)])
  echo.ws.close(1000, 'page done')
  await echo.closed
  const push = await open('/push')
  for (let i = 0; i < 3; i++) { const m = await push.next(); out.pushed.push(typeof m === 'string' ? m.length : -1) }
  out.serverClose = await push.closed
  await report(out)
})().catch((err) => report({ error: String(err && err.stack || err) }))
</script>`

interface PageReport {
  error?: string
  extensions: string
  echoes: Array<[string, number, boolean]>
  pushed: number[]
  serverClose: { code: number, reason: string, wasClean: boolean }
}

t.test('Firefox: permessage-deflate, echoes at every length encoding, empty messages, closes both ways', async (t) => {
  const app = Fastify()
  await app.register(websocket, { maxPayload: 2 * 1024 * 1024, perMessageDeflate: { threshold: 0 }, heartbeatInterval: 0 })
  const serverSaw: Array<{ code: number, reason: string }> = []
  let report!: (r: PageReport) => void
  const reported = new Promise<PageReport>((resolve) => { report = resolve })
  app.get('/', async (_req, reply) => reply.type('text/html').send(PAGE))
  app.post('/result', async (req) => { report(req.body as PageReport); return { ok: true } })
  app.ws('/echo', (socket) => {
    socket.on('message', (data: Buffer, binary: boolean) => { socket.send(data, { binary }) })
    socket.on('close', (code: number, reason: Buffer) => serverSaw.push({ code, reason: reason.toString() }))
  })
  app.ws('/push', (socket) => {
    // a compressed message, then an empty one, then another: every one compressed (threshold 0)
    socket.send('x'.repeat(300))
    socket.send('')
    socket.send('after')
    socket.close(4001, 'server done')
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }

  const profile = mkdtempSync(join(tmpdir(), 'firefox-interop-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  // a quiet first run: no default-browser check, no welcome page, no updates or telemetry
  writeFileSync(join(profile, 'user.js'), [
    'browser.shell.checkDefaultBrowser", false',
    'browser.startup.homepage_override.mstone", "ignore"',
    'browser.aboutwelcome.enabled", false',
    'datareporting.policy.dataSubmissionEnabled", false',
    'toolkit.telemetry.reportingpolicy.firstRun", false',
    'app.update.disabledForTesting", true',
    'network.proxy.type", 0'
  ].map((line) => `user_pref("${line});`).join('\n'))
  const firefox = spawn(FIREFOX, ['--headless', '--no-remote', '--profile', profile, `http://127.0.0.1:${port}/`], {
    stdio: 'ignore',
    env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1', MOZ_DISABLE_AUTO_SAFE_MODE: '1' }
  })
  const exited = new Promise<void>((resolve) => firefox.once('exit', () => resolve()))
  t.teardown(async () => {
    firefox.kill('SIGKILL')
    await exited
  })

  const result = await deadline(reported, 'the page report from Firefox', 90_000)
  t.equal(result.error, undefined, 'the page ran to the end')
  t.equal(result.extensions, 'permessage-deflate', 'Firefox negotiated permessage-deflate')
  t.equal(result.echoes.length, 15)
  for (const [kind, n, same] of result.echoes) t.ok(same, `${kind} of ${n} echoed intact`)
  t.same(result.pushed, [300, 0, 5], 'a compressed message, an empty one, another: all three received')
  t.same(result.serverClose, { code: 4001, reason: 'server done', wasClean: true }, 'the server close reached the page')
  t.same(serverSaw, [{ code: 1000, reason: 'page done' }], 'the page close reached the server')
})
