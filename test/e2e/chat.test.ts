// End to end: the chat demo in headless Chromium (Debian's package, driven by playwright-core).
// playwright-core gives each launch a fresh temporary profile.
// Two pages join a room (a topic of the plugin), see each other's presence and messages, and one
// leaves; a page in another room hears nothing of it.
import t from 'tap'
import { launchChromium } from './browser.js'
import { buildChat } from '../../examples/chat/server.js'

process.env.NODE_ENV = 'test'

t.test('two browser pages chat through the demo', async (t) => {
  const app = await buildChat()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const url = `http://127.0.0.1:${port}/`
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
