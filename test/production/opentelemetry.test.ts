// The OpenTelemetry example, with a minimal in-memory tracer written against @opentelemetry/api's
// interfaces (the user's side: an SDK would export these spans).
import t from 'tap'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { type Attributes, type Context, type Link, type Span, type SpanContext, type SpanOptions, type SpanStatus, type Tracer, trace, TraceFlags } from '@opentelemetry/api'
import { buildTraced } from '../../examples/opentelemetry.js'
import { until } from '../plugin/helpers.js'
import { clientClosed, listening, openClient, refusedStatus } from './helpers.js'

process.env.NODE_ENV = 'test'

class MemorySpan implements Span {
  readonly attributes: Attributes = {}
  status: SpanStatus = { code: 0 }
  ended = false
  readonly links: Link[]
  readonly context: SpanContext
  constructor (readonly name: string, options: SpanOptions, readonly parent: SpanContext | undefined) {
    Object.assign(this.attributes, options.attributes)
    this.links = [...(options.links ?? [])]
    this.context = { traceId: parent?.traceId ?? randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED }
  }

  spanContext (): SpanContext { return this.context }
  setAttribute (key: string, value: Attributes[string]): this { this.attributes[key] = value; return this }
  setAttributes (attributes: Attributes): this { Object.assign(this.attributes, attributes); return this }
  addEvent (): this { return this }
  addLink (link: Link): this { this.links.push(link); return this }
  addLinks (links: Link[]): this { this.links.push(...links); return this }
  setStatus (status: SpanStatus): this { this.status = status; return this }
  updateName (): this { return this }
  end (): void { this.ended = true }
  isRecording (): boolean { return !this.ended }
  recordException (): void {}
}

function memoryTracer (): { tracer: Tracer, spans: MemorySpan[] } {
  const spans: MemorySpan[] = []
  const tracer = {
    startSpan (name: string, options: SpanOptions = {}, ctx?: Context): Span {
      const span = new MemorySpan(name, options, ctx === undefined ? undefined : trace.getSpan(ctx)?.spanContext())
      spans.push(span)
      return span
    },
    startActiveSpan () { throw new Error('not used by the example') }
  } as unknown as Tracer
  return { tracer, spans }
}

t.test('upgrade span linked to the connection span; message spans opt-in', async (t) => {
  const { tracer, spans } = memoryTracer()
  const app = await buildTraced({ tracer, messageSpans: true })
  t.teardown(() => app.close())
  const port = await listening(app)
  const client = await openClient(`ws://127.0.0.1:${port}/echo?token=x`)
  client.send('hi')
  await once(client, 'message')
  client.close(1000)
  await clientClosed(client)
  await until(() => spans.every((s) => s.ended) && spans.length === 3, 'the spans to end')

  const [upgrade, connection, message] = spans
  t.match(upgrade, { name: 'websocket upgrade', attributes: { 'url.path': '/echo', 'http.route': '/echo', 'http.response.status_code': 101 } })
  t.match(connection, { name: 'websocket connection', attributes: { 'websocket.close.code': 1000, 'websocket.closed_by': 'client' } })
  t.same(connection.links.map((l) => l.context.spanId), [upgrade.context.spanId], 'the connection links to its upgrade')
  t.match(message, { name: 'websocket message', attributes: { 'messaging.message.body.size': 2, 'websocket.binary': false } })
  t.equal(message.parent?.spanId, connection.context.spanId, 'a message span is a child of its connection')
})

t.test('a refused upgrade ends its span with the status; no message spans by default', async (t) => {
  const { tracer, spans } = memoryTracer()
  const app = await buildTraced({ tracer })
  t.teardown(() => app.close())
  const port = await listening(app)
  t.equal((await refusedStatus(`ws://127.0.0.1:${port}/nowhere`)).status, 404)
  await until(() => spans.length === 1 && spans[0].ended, 'the upgrade span')
  t.match(spans[0], { name: 'websocket upgrade', attributes: { 'http.response.status_code': 404 }, status: { code: 2 } })

  const client = await openClient(`ws://127.0.0.1:${port}/echo`)
  client.send('hi')
  await once(client, 'message')
  client.close()
  await clientClosed(client)
  await until(() => spans.length === 3 && spans.every((s) => s.ended), 'the connection span')
  t.same(spans.map((s) => s.name), ['websocket upgrade', 'websocket upgrade', 'websocket connection'])
})
