// The typed-rooms example (TypeBox-validated messages, a handler per message type), driven with
// injectWS: no network.
import t from 'tap'
import { buildTypedRooms } from '../../examples/typed-rooms.js'
import { json } from './helpers.js'

process.env.NODE_ENV = 'test'

t.test('typed rooms: welcome, broadcast, who, a refused message, a refused upgrade', async (t) => {
  const app = await buildTypedRooms()
  t.teardown(() => app.close())
  const ann = await app.injectWS('/rooms/lobby', { query: { name: 'ann' } })
  t.same(await json(ann), { type: 'welcome', text: 'hello ann, you are in lobby' })
  const ben = await app.injectWS('/rooms/lobby', { query: { name: 'ben' } })
  t.same(await json(ben), { type: 'welcome', text: 'hello ben, you are in lobby' })
  const cid = await app.injectWS('/rooms/attic', { query: { name: 'cid' } })
  t.same(await json(cid), { type: 'welcome', text: 'hello cid, you are in attic' })

  ann.send({ type: 'say', text: 'hello' })
  t.same(await json(ben), { type: 'say', from: 'ann', text: 'hello' })
  t.same(await json(ann), { type: 'say', from: 'ann', text: 'hello' })

  ben.send({ type: 'who' })
  t.same(await json(ben), { type: 'who', names: ['ann', 'ben'] })

  ben.send({ type: 'say', text: '' })
  const refused = await json(ben)
  t.match(refused, { type: 'error', code: 'WS_ERR_MESSAGE_SCHEMA' })
  t.ok(refused.errors.some((e: { instancePath: string }) => e.instancePath === '/text'), 'the error points at /text')

  cid.send({ type: 'who' })
  t.same(await json(cid), { type: 'who', names: ['cid'] }, 'rooms are separate')

  await t.rejects(app.injectWS('/rooms/NOT_VALID', { query: { name: 'x' } }), { name: 'WebSocketUpgradeError', statusCode: 400 })
  await t.rejects(app.injectWS('/rooms/lobby'), { name: 'WebSocketUpgradeError', statusCode: 400 }, 'the name is required')
})
