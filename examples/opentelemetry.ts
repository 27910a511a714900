// OpenTelemetry with @opentelemetry/api: a span for the upgrade, started in Fastify's onRequest
// hook and ended when the 101 went out (or when the refusal was sent), linked to a span for the
// connection's lifetime; a span per inbound message if `messageSpans` is on (off by default:
// one span per message is costly). Register any SDK's tracer provider to export them.
// Run: npx tsx examples/opentelemetry.ts, then connect to ws://127.0.0.1:3000/echo
import diagnosticsChannel from 'node:diagnostics_channel'
import Fastify, { type FastifyRequest } from 'fastify'
import { context, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api'
import websocket, { type WebSocket } from '../lib/index.js'

export interface TracingOptions {
  tracer?: Tracer
  /** a span per inbound message, child of the connection's span; default false */
  messageSpans?: boolean
}

export async function buildTraced ({ tracer = trace.getTracer('fastify-rfc6455-example'), messageSpans = false }: TracingOptions = {}) {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: 'info' } })
  await app.register(websocket)
  const upgrades = new WeakMap<FastifyRequest, Span>()
  const connections = new WeakMap<WebSocket, Span>()

  app.addHook('onRequest', async (request) => {
    if (!request.ws) return
    upgrades.set(request, tracer.startSpan('websocket upgrade', {
      kind: SpanKind.SERVER,
      attributes: { 'url.path': request.url.split('?')[0], 'http.route': request.routeOptions.url ?? '' }
    }))
  })
  // a refused upgrade (401, 403, 429...) is an ordinary reply: its span ends with the status
  app.addHook('onResponse', async (request, reply) => {
    const span = upgrades.get(request)
    if (span === undefined) return
    span.setAttribute('http.response.status_code', reply.statusCode)
    span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
  })
  app.addWebSocketHook('onOpen', (socket, request) => {
    const upgrade = upgrades.get(request)
    if (upgrade === undefined) return
    upgrade.setAttribute('http.response.status_code', 101)
    upgrade.end()
    // the connection outlives the upgrade's trace: its own span, linked to the upgrade
    connections.set(socket, tracer.startSpan('websocket connection', {
      kind: SpanKind.SERVER,
      links: [{ context: upgrade.spanContext() }],
      attributes: { 'http.route': request.routeOptions.url ?? '', 'websocket.protocol': socket.protocol }
    }))
  })
  app.addWebSocketHook('onClose', (socket, _request, info) => {
    const span = connections.get(socket)
    if (span === undefined) return
    span.setAttributes({ 'websocket.close.code': info.code, 'websocket.close.reason': info.reason, 'websocket.closed_by': info.closedBy })
    if (info.closedBy === 'protocol-error') span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
  })
  if (messageSpans) {
    const onMessage = (message: unknown): void => {
      const { socket, size, binary } = message as { socket: WebSocket, size: number, binary: boolean }
      const parent = connections.get(socket)
      if (parent === undefined) return
      tracer.startSpan('websocket message', { kind: SpanKind.CONSUMER, attributes: { 'messaging.message.body.size': size, 'websocket.binary': binary } },
        trace.setSpan(context.active(), parent)).end()
    }
    diagnosticsChannel.subscribe('fastify-rfc6455:message:received', onMessage)
    app.addHook('onClose', async () => { diagnosticsChannel.unsubscribe('fastify-rfc6455:message:received', onMessage) })
  }

  app.ws('/echo', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString()))
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildTraced()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
