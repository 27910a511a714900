// examples/resume.ts, as a user runs it: a ws client reads the feed, disconnects, news is
// posted meanwhile, and it reconnects with the resume parameter.
import t from 'tap'
import { buildResume } from '../../examples/resume.js'
import { closeClient, jsonClient } from '../topics/history-helpers.js'

process.env.NODE_ENV = 'test'

t.test('resume example: a reader that comes back gets the news it missed, then live news', async (t) => {
  const app = await buildResume({ NODE_ENV: 'test' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  const reader = await jsonClient(`ws://127.0.0.1:${port}/feed`)
  const [subscribed] = await reader.next(1)
  t.match(subscribed, { type: 'subscribed', topic: 'news', offset: 0, recovered: 0 })
  t.same((await app.inject({ method: 'POST', url: '/news', payload: { title: 'one' } })).json(), { delivered: 1 })
  const [, first] = await reader.next(2)
  t.match(first, { type: 'publication', topic: 'news', offset: 1, data: { title: 'one' } })
  await closeClient(reader)
  for (const title of ['two', 'three']) await app.inject({ method: 'POST', url: '/news', payload: { title } })
  const resume = encodeURIComponent(JSON.stringify({ news: [first.epoch, first.offset] }))
  const back = await jsonClient(`ws://127.0.0.1:${port}/feed?resume=${resume}`)
  const got = await back.next(3)
  t.same(got[0], { type: 'subscribed', topic: 'news', epoch: first.epoch, offset: 3, recovered: 2 })
  t.same(got.slice(1).map((m) => (m.data as { title: string }).title), ['two', 'three'])
  await app.inject({ method: 'POST', url: '/news', payload: { title: 'four' } })
  t.match((await back.next(4))[3], { offset: 4, data: { title: 'four' } })
  await closeClient(back)
})
