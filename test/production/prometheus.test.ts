// The Prometheus example: /metrics reports what was measured.
import t from 'tap'
import { once } from 'node:events'
import { buildPrometheus } from '../../examples/prometheus.js'
import { until } from '../plugin/helpers.js'
import { clientClosed, listening, openClient } from './helpers.js'

process.env.NODE_ENV = 'test'

t.test('/metrics reports connections, messages, bytes and close codes per route', async (t) => {
  const app = await buildPrometheus()
  t.teardown(() => app.close())
  const port = await listening(app)
  const a = await openClient(`ws://127.0.0.1:${port}/echo`)
  const b = await openClient(`ws://127.0.0.1:${port}/echo`)
  for (const text of ['one', 'two', 'three']) {
    a.send(text)
    await once(a, 'message')
  }
  b.close(4000, 'done')
  await clientClosed(b)
  await until(() => app.websocketMetrics().total.closed === 1, 'the close')
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  const body = res.body
  t.match(body, /websocket_connections_open\{route="\/echo"\} 1\n/)
  t.match(body, /websocket_connections_opened_total\{route="\/echo"\} 2\n/)
  t.match(body, /websocket_connections_closed_total\{route="\/echo",code="4000"\} 1\n/)
  t.match(body, /websocket_messages_total\{route="\/echo",direction="in"\} 3\n/)
  t.match(body, /websocket_messages_total\{route="\/echo",direction="out"\} 3\n/)
  const bytesIn = Number(/websocket_bytes_total\{route="\/echo",direction="in"\} (\d+)/.exec(body)![1])
  t.ok(bytesIn >= app.websocketMetrics().routes['/echo'].payloadBytesIn, 'wire bytes include the payloads')
  t.equal(bytesIn, app.websocketMetrics().total.bytesIn, 'the snapshot and the exposition agree')
  a.close()
})
