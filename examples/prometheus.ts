// Prometheus: the plugin's metrics snapshot (app.websocketMetrics()) exposed on /metrics with
// prom-client, read at scrape time (nothing is counted twice).
// Run: npx tsx examples/prometheus.ts, connect to ws://127.0.0.1:3000/echo, then GET /metrics
import Fastify from 'fastify'
import { Counter, Gauge, Registry } from 'prom-client'
import websocket from '../lib/index.js'

export async function buildPrometheus () {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: 'info' } })
  await app.register(websocket)
  app.ws('/echo', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString()))
  })

  const registry = new Registry()
  const routes = () => Object.entries(app.websocketMetrics().routes)
  new Gauge({
    name: 'websocket_connections_open',
    help: 'Open WebSocket connections',
    labelNames: ['route'],
    registers: [registry],
    collect () { for (const [route, m] of routes()) this.set({ route }, m.open) }
  })
  // counters are read from the snapshot at scrape time: reset, then set to the current total
  const counter = (name: string, help: string, labelNames: string[], values: (route: string, m: ReturnType<typeof app.websocketMetrics>['total']) => Array<[Record<string, string>, number]>) =>
    new Counter({
      name, help, labelNames, registers: [registry],
      collect () {
        this.reset()
        for (const [route, m] of routes()) for (const [labels, value] of values(route, m)) this.inc({ route, ...labels }, value)
      }
    })
  counter('websocket_connections_opened_total', 'WebSocket connections opened', ['route'], (_r, m) => [[{}, m.opened]])
  counter('websocket_connections_closed_total', 'WebSocket connections closed, per close code', ['route', 'code'],
    (_r, m) => Object.entries(m.closeCodes).map(([code, n]) => [{ code }, n]))
  counter('websocket_messages_total', 'WebSocket data messages', ['route', 'direction'], (_r, m) => [[{ direction: 'in' }, m.messagesIn], [{ direction: 'out' }, m.messagesOut]])
  counter('websocket_bytes_total', 'Bytes on the wire of WebSocket connections', ['route', 'direction'], (_r, m) => [[{ direction: 'in' }, m.bytesIn], [{ direction: 'out' }, m.bytesOut]])
  counter('websocket_dropped_messages_total', 'Messages dropped by a WebSocket limit policy', ['route'], (_r, m) => [[{}, m.drops]])
  counter('websocket_upgrades_refused_total', 'Upgrades refused before the 101, per error code', ['route', 'code'],
    (_r, m) => Object.entries(m.refused).map(([code, n]) => [{ code }, n]))

  app.get('/metrics', async (_request, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildPrometheus()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
