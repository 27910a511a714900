// End to end: the chat page's bundled client (fastify-rfc6455/client) in headless Chromium. Two
// pages send and receive through the contract, join is a request answered by its reply, and the
// server restarts mid-session: both pages show the reconnection, come back by themselves, take
// their seats again and go on chatting. The demo also serves its AsyncAPI document.
import t from 'tap'
import { launchChromium } from './browser.js'
import { buildChat } from '../../examples/chat/server.js'

process.env.NODE_ENV = 'test'

t.test('the chat page survives a server restart through the client', async (t) => {
  let app = await buildChat()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const url = `http://127.0.0.1:${port}/`

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
  await app.listen({ host: '127.0.0.1', port })
  for (const page of [ann, bob]) {
    await page.getByText('connected', { exact: true }).waitFor({ timeout: 15000 })
  }
  // each page took its seat again with a new join request
  await ann.locator('#members', { hasText: 'ann, bob' }).waitFor({ timeout: 5000 })
  t.equal(app.subscriberCount('room:restart'), 2, 'both pages are subscribed on the new server')
  await ann.fill('#text', 'after')
  await ann.press('#text', 'Enter')
  await bob.locator('#log li', { hasText: 'ann: after' }).waitFor({ timeout: 5000 })
  t.same(await bob.locator('#log li').allTextContents(),
    ['joined restart as bob', 'bob: before', 'joined restart as bob', 'ann: after'], 'bob heard ann after the restart')
})
