// Resumable streams in headless Chromium (Debian's package, driven by playwright-core): a page on
// the bundled client (fastify-rfc6455/client, built with esbuild) follows a route whose handler
// subscribes to a topic with history. The page goes offline through CDP network emulation
// (Network.emulateNetworkConditions), publications are made meanwhile, it comes back online and
// shows every one of them, in order, once.
//
// What Chromium does (156, measured): emulated offline does NOT close an open WebSocket. Its
// readyState stays OPEN and data frames in both directions are held until the network is back,
// while Pings are still answered (the network service answers them, below the emulation), so a
// server's heartbeat does not notice an emulated-offline page. New connections fail at once
// (close 1006). When the server ends the TCP connection while the page is offline, the page sees
// close 1006 at once and the frames held for it are dropped. So the test cuts the page's
// connection from the server side, as a network that is gone would.
import t from 'tap'
import Fastify from 'fastify'
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import websocket, { defineContract, type WebSocket } from '../../lib/index.js'
import { deadline } from '../plugin/helpers.js'

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** The contract, in plain JSON Schema: the page declares the same one. */
const FEED = {
  client: { hello: { type: 'object' } },
  server: { item: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } }
} as const

const PAGE = `<!doctype html><meta charset="utf-8"><title>feed</title>
<p id="state"></p><ol id="recoveries"></ol><ol id="items"></ol>
<script type="module">
import { createClient, defineContract } from '/client.js'
const feed = defineContract(${JSON.stringify(FEED)})
const client = createClient(feed, { url: 'ws://' + location.host + '/feed', reconnect: { initialDelay: 100, maxDelay: 500 } })
const add = (list, text) => { const li = document.createElement('li'); li.textContent = text; document.getElementById(list).append(li) }
client.onState((s) => { document.getElementById('state').textContent = s.state + (s.state === 'reconnecting' ? ' ' + s.attempt : '') })
client.onRecovery((r) => add('recoveries', r.recovered === false ? 'lost: ' + r.reason : 'recovered ' + r.recovered))
client.on('item', (m) => add('items', String(m.n)))
</script>`

const offline = (value: boolean): { offline: boolean, latency: number, downloadThroughput: number, uploadThroughput: number } =>
  ({ offline: value, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })

t.test('the page goes offline, publications go on, it comes back and shows every one of them, in order, once', async (t) => {
  // the client as a browser ES module (esbuild's default platform is the browser)
  const bundle = await build({ entryPoints: [fileURLToPath(new URL('../../lib/client.ts', import.meta.url))], bundle: true, format: 'esm', minify: true, write: false })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { history: true })
  const sockets = new Set<WebSocket>()
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  app.get('/client.js', async (_request, reply) => reply.type('text/javascript; charset=utf-8').send(bundle.outputFiles[0].text))
  app.ws('/feed', { contract: defineContract(FEED), messageHandlers: { hello: () => {} } }, (socket) => {
    sockets.add(socket)
    socket.subscribe('news')
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const publish = (from: number, to: number): void => { for (let n = from; n <= to; n++) app.publish('news', { type: 'item', n }) }

  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(`http://127.0.0.1:${port}/`)
  await page.locator('#recoveries li', { hasText: 'recovered 0' }).waitFor({ timeout: 10000 })
  publish(1, 3)
  await page.locator('#items li').nth(2).waitFor({ timeout: 5000 })

  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  const [first] = sockets
  await cdp.send('Network.emulateNetworkConditions', offline(true))
  const gone = deadline(new Promise<void>((resolve) => { first.once('close', () => resolve()) }), 'the connection to close')
  first.terminate()
  await gone
  publish(4, 8)
  t.equal(app.subscriberCount('news'), 0, 'published while nobody listens')
  // retry 2 or later: the first one failed, the page is offline
  await page.locator('#state', { hasText: /^reconnecting ([2-9]|\d{2,})$/ }).waitFor({ timeout: 5000 })
  t.pass('the page\'s reconnections fail while it is offline')
  await cdp.send('Network.emulateNetworkConditions', offline(false))

  await page.locator('#recoveries li').nth(1).waitFor({ timeout: 15000 })
  t.same(await page.locator('#recoveries li').allTextContents(), ['recovered 0', 'recovered 5'], 'the page was told it recovered the 5 it missed')
  await page.locator('#items li').nth(7).waitFor({ timeout: 5000 })
  publish(9, 9)
  await page.locator('#items li').nth(8).waitFor({ timeout: 5000 })
  t.equal(await page.textContent('#state'), 'open')
  t.same(await page.locator('#items li').allTextContents(), ['1', '2', '3', '4', '5', '6', '7', '8', '9'], 'every publication, in order, once')
})
