// examples/compression.ts driven by the ws client with deflate
import t from 'tap'
import { WebSocket as WsClient } from 'ws'
import { buildCompression } from '../../examples/compression.js'
import { deadline, rawConnect } from './helpers.js'

t.test('the compression example negotiates per route and serves compressed JSON', async (t) => {
  const app = await buildCompression()
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }

  const feed = new WsClient(`ws://127.0.0.1:${port}/feed`, { perMessageDeflate: true })
  await deadline(new Promise((resolve, reject) => { feed.once('open', resolve); feed.once('error', reject) }), 'open')
  t.equal(feed.extensions, 'permessage-deflate')
  const reply = new Promise<{ rows: unknown[] }>((resolve) => feed.once('message', (d: Buffer) => resolve(JSON.parse(d.toString()))))
  feed.send(JSON.stringify({ want: 200 }))
  t.equal((await deadline(reply, 'rows')).rows.length, 200)
  feed.close()

  const lean = await rawConnect(port, '/lean', 'permessage-deflate; client_max_window_bits')
  t.equal(lean.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10')
  lean.socket.destroy()
  const raw = await rawConnect(port, '/raw', 'permessage-deflate')
  t.equal(raw.status, 101)
  t.notOk('sec-websocket-extensions' in raw.headers)
  raw.socket.destroy()
})
