// End to end: the chat demo in headless Chromium (Debian's package, driven by playwright-core).
// playwright-core gives each launch a fresh temporary profile.
// Two pages join a room (a topic of the plugin), see each other's presence and messages, and one
// leaves; a page in another room hears nothing of it. The page talks through its bundled client
// (fastify-rfc6455/client): join is a request answered by its reply, and when the server restarts
// mid-session the pages show the reconnection, come back by themselves, take their seats again
// and go on chatting. The demo also serves its AsyncAPI document.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser } from 'playwright-core'
import { buildChat } from '../../examples/chat/server.js'

process.env.NODE_ENV = 'test'
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** The demo on a port of its own and a browser, both closed with the test. */
async function start (t: Test): Promise<{ app: FastifyInstance, port: number, url: string, browser: Browser }> {
  const app = await buildChat()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic']
  })
  t.teardown(() => browser.close())
  return { app, port, url: `http://127.0.0.1:${port}/`, browser }
}

t.test('two browser pages chat through the demo', async (t) => {
  const { app, url, browser } = await start(t)
  const ann = await browser.newPage()
  const bob = await browser.newPage()
  await ann.goto(url)
  await bob.goto(url)
  await ann.getByText('connected', { exact: true }).waitFor({ timeout: 10000 })
  await bob.getByText('connected', { exact: true }).waitFor({ timeout: 10000 })

  await ann.fill('#name', 'ann')
  await ann.fill('#room', 'e2e')
  await ann.click('#join button')
  await ann.getByText('joined e2e as ann').waitFor({ timeout: 5000 })
  await bob.fill('#name', 'bob')
  await bob.fill('#room', 'e2e')
  await bob.click('#join button')
  await bob.getByText('joined e2e as bob').waitFor({ timeout: 5000 })
  await ann.locator('#members', { hasText: 'ann, bob' }).waitFor({ timeout: 5000 })
  t.equal(await bob.textContent('#members'), 'ann, bob', 'both pages see both members')
  t.equal(app.subscriberCount('room:e2e'), 2, 'the room is a topic with both sockets subscribed')
  const eve = await browser.newPage()
  await eve.goto(url)
  await eve.getByText('connected', { exact: true }).waitFor({ timeout: 10000 })
  await eve.fill('#name', 'eve')
  await eve.fill('#room', 'elsewhere')
  await eve.click('#join button')
  await eve.getByText('joined elsewhere as eve').waitFor({ timeout: 5000 })

  await bob.fill('#text', 'hello from bob')
  await bob.click('#send')
  await ann.locator('#log li', { hasText: 'bob: hello from bob' }).waitFor({ timeout: 5000 })
  await ann.fill('#text', 'hi bob')
  await ann.press('#text', 'Enter')
  await bob.locator('#log li', { hasText: 'ann: hi bob' }).waitFor({ timeout: 5000 })
  t.same(await ann.locator('#log li').allTextContents(), ['joined e2e as ann', 'bob: hello from bob', 'ann: hi bob'])

  await bob.click('#leave')
  await bob.getByText('left the room').waitFor({ timeout: 5000 })
  await ann.locator('#members', { hasText: /^ann$/ }).waitFor({ timeout: 5000 })
  t.equal(await ann.textContent('#members'), 'ann', 'presence updates when bob leaves')
  t.equal(await bob.isDisabled('#send'), true, 'bob can no longer send')
  t.equal(app.subscriberCount('room:e2e'), 1, 'bob unsubscribed')
  t.same(await eve.locator('#log li').allTextContents(), ['joined elsewhere as eve'], 'another room heard nothing')
  await ann.close()
  const until = Date.now() + 5000
  while (app.subscriberCount('room:e2e') > 0 && Date.now() < until) await new Promise((resolve) => setImmediate(resolve))
  t.equal(app.subscriberCount('room:e2e'), 0, 'a closed page leaves its room')
})

t.test('the chat page survives a server restart through the client', async (t) => {
  const first = await start(t)
  const { port, url, browser } = first
  let app = first.app

  const document = await (await fetch(`${url}asyncapi.json`)).json() as { asyncapi: string, channels: Record<string, { address: string, messages: object }> }
  t.equal(document.asyncapi, '3.0.0')
  t.same(Object.keys(document.channels.chat.messages).sort(),
    ['client_join', 'client_leave', 'client_say', 'error', 'reply_join', 'reply_leave', 'server_message', 'server_notice', 'server_presence'],
    'GET /asyncapi.json documents the chat route')

  const ann = await browser.newPage()
  const bob = await browser.newPage()
  for (const [page, name] of [[ann, 'ann'], [bob, 'bob']] as const) {
    await page.goto(url)
    await page.getByText('connected', { exact: true }).waitFor({ timeout: 10000 })
    await page.fill('#name', name)
    await page.fill('#room', 'restart')
    await page.click('#join button')
    // the join request's reply carries the room, the name and the members
    await page.getByText(`joined restart as ${name}`).waitFor({ timeout: 5000 })
  }
  await ann.locator('#members', { hasText: 'ann, bob' }).waitFor({ timeout: 5000 })
  await bob.fill('#text', 'before')
  await bob.click('#send')
  await ann.locator('#log li', { hasText: 'bob: before' }).waitFor({ timeout: 5000 })

  // the server goes away (1001 to every page) and a new one takes the same port
  await app.close()
  await ann.getByText(/^reconnecting in \d+ s$/).waitFor({ timeout: 5000 })
  await bob.getByText(/^reconnecting in \d+ s$/).waitFor({ timeout: 5000 })
  app = await buildChat()
  const second = app
  t.teardown(() => second.close())
  await app.listen({ host: '127.0.0.1', port })
  for (const page of [ann, bob]) {
    await page.getByText('connected', { exact: true }).waitFor({ timeout: 15000 })
  }
  // each page took its seat again with a new join request: its reply logs a second "joined" line
  // (the member list still shows the names from before the restart, so it proves nothing yet)
  for (const [page, name] of [[ann, 'ann'], [bob, 'bob']] as const) {
    await page.locator('#log li', { hasText: `joined restart as ${name}` }).nth(1).waitFor({ timeout: 5000 })
  }
  await ann.locator('#members', { hasText: 'ann, bob' }).waitFor({ timeout: 5000 })
  t.equal(app.subscriberCount('room:restart'), 2, 'both pages are subscribed on the new server')
  await ann.fill('#text', 'after')
  await ann.press('#text', 'Enter')
  await bob.locator('#log li', { hasText: 'ann: after' }).waitFor({ timeout: 5000 })
  t.same(await bob.locator('#log li').allTextContents(),
    ['joined restart as bob', 'bob: before', 'joined restart as bob', 'ann: after'], 'bob heard ann after the restart')
})
