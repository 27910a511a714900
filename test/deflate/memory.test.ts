// zlib state is released on close: many compressed connections opened and closed (cleanly,
// abruptly, mid-message) leave no zlib stream and no connection behind. The 10,000-connection
// memory figure comes from test/deflate/soak.ts (a script, run on demand).
import t from 'tap'
import { WebSocket as WsClient } from 'ws'
import { liveZlibStreams, zlibJobs } from '../../lib/connection/deflate.js'
import { deadline, startServer, waitFor } from './helpers.js'

const COUNT = 300
const BATCH = 50

t.test(`${COUNT} compressed connections opened and closed release every zlib stream`, async (t) => {
  const srv = await startServer({ perMessageDeflate: { threshold: 0 } })
  t.teardown(() => srv.app.close())
  await waitFor(() => liveZlibStreams() === 0, 'a clean start')
  const payload = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ id: i, v: `value-${i}` })))
  let echoed = 0
  for (let b = 0; b < COUNT / BATCH; b++) {
    await Promise.all(Array.from({ length: BATCH }, async (_, k) => {
      const i = b * BATCH + k
      const client = new WsClient(`ws://127.0.0.1:${srv.port}/echo`, { perMessageDeflate: { threshold: 0 } })
      await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'open')
      const closed = new Promise((resolve) => client.once('close', resolve))
      client.on('error', () => {})
      const echo = new Promise<string>((resolve) => client.once('message', (d: Buffer) => resolve(d.toString())))
      client.send(payload)
      if ((await deadline(echo, 'echo')) === payload) echoed++
      switch (i % 3) {
        case 0: client.close(1000); break
        case 1: client.terminate(); break
        default:
          // the peer vanishes in the middle of a compressed message
          client.send(payload, { fin: false })
          client.terminate()
      }
      await deadline(closed, 'client close')
    }))
  }
  t.equal(echoed, COUNT, 'every connection exchanged a compressed message')
  await waitFor(() => srv.app.websocketConnections.size === 0, 'server connections closed')
  await waitFor(() => liveZlibStreams() === 0, 'zlib streams released')
  t.equal(liveZlibStreams(), 0, 'no zlib stream left (client streams of ws are not counted)')
  t.same(zlibJobs(), { running: 0, waiting: 0 }, 'no zlib job or slot left')
})
