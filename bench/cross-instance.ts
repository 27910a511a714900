/**
 * Cross-instance publish/subscribe: N server instances share one redis-server; every instance
 * holds S subscribers of one topic; one publisher (a client of instance 0) sends M messages,
 * each relayed by its server to every other subscriber on every instance. Measured per system:
 * deliveries per second (wall clock) and the servers' CPU time per delivery (user + system of
 * every instance process, redis-server apart), and the ratio of deliveries per CPU-second.
 *
 * Systems, in the same run, rounds alternating:
 * - fastify-rfc6455 (compiled as users run it) with `redisAdapter()` from `fastify-rfc6455/redis`;
 * - socket.io with `@socket.io/redis-adapter` (`createAdapter`, its default, ioredis clients),
 *   websocket transport only, `socket.to(topic).emit('m', text)`.
 *
 * Run: npm run bench:cross -- [--instances=3] [--subscribers=300] [--messages=2000] [--size=64] [--rounds=3]
 *      [--systems=fastify-rfc6455,socket.io]
 */
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Redis } from 'ioredis'
import { WebSocket as WsClient } from 'ws'
import { io as ioClient, type Socket as IoSocket } from 'socket.io-client'
import { IpcChild, notifyParent, serveIpc } from '../test/redis/ipc-child.js'
import { startRedis } from '../test/redis/redis-server.js'
import { buildLib } from './harness.js'

const SELF = fileURLToPath(import.meta.url)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TOPIC = 'bench'
type Kind = 'fastify-rfc6455' | 'socket.io'

function arg (name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found === undefined ? fallback : Number(found.slice(name.length + 3))
}

// ---- server side (a child process per instance) ----------------------------------------------

async function serveOurs (redisUrl: string): Promise<number> {
  const libUrl = process.env.BENCH_LIB ?? pathToFileURL(`${ROOT}lib/index.ts`).href
  const { default: websocket } = await import(libUrl) as typeof import('../lib/index.js')
  const { redisAdapter } = await import(libUrl.replace(/index\.(js|ts)$/, 'redis.$1')) as typeof import('../lib/redis.js')
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  await app.register(websocket, { adapter: redisAdapter({ url: redisUrl }) })
  app.ws<{ Params: { topic: string } }>('/topics/:topic', (socket, request) => {
    const { topic } = request.params
    socket.subscribe(topic)
    socket.on('message', (data, isBinary) => { socket.publish(topic, isBinary ? data : data.toString()) })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

async function serveSocketIo (redisUrl: string): Promise<number> {
  const { createServer } = await import('node:http')
  const { Server } = await import('socket.io')
  const { createAdapter } = await import('@socket.io/redis-adapter')
  const pub = new Redis(redisUrl)
  const sub = pub.duplicate()
  const http = createServer()
  const server = new Server(http, { transports: ['websocket'], adapter: createAdapter(pub, sub) })
  server.on('connection', (socket) => {
    const topic = String(socket.handshake.query.topic)
    void socket.join(topic)
    socket.on('m', (text: string) => { socket.to(topic).emit('m', text) })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  return (http.address() as { port: number }).port
}

async function serverMain (): Promise<void> {
  const kind = process.env.BENCH_KIND as Kind
  const redisUrl = String(process.env.BENCH_REDIS)
  const port = kind === 'socket.io' ? await serveSocketIo(redisUrl) : await serveOurs(redisUrl)
  serveIpc({ cpu: () => { const { user, system } = process.cpuUsage(); return { micros: user + system } } })
  notifyParent({ type: 'ready', port })
}

// ---- load side --------------------------------------------------------------------------------

interface Client { send (text: string): void, close (): void }

/** Connect one client; every message it receives calls `onMessage`. */
async function connect (kind: Kind, port: number, onMessage: () => void): Promise<Client> {
  if (kind === 'socket.io') {
    const socket: IoSocket = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], query: { topic: TOPIC }, reconnection: false })
    socket.on('m', onMessage)
    await new Promise<void>((resolve, reject) => { socket.once('connect', () => resolve()); socket.once('connect_error', reject) })
    return { send: (text) => socket.emit('m', text), close: () => socket.close() }
  }
  const ws = new WsClient(`ws://127.0.0.1:${port}/topics/${TOPIC}`)
  ws.on('message', onMessage)
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  return { send: (text) => ws.send(text), close: () => ws.close() }
}

interface System {
  kind: Kind
  servers: IpcChild[]
  clients: Client[]
  publisher: Client
  delivered: number
  target: number
  reached: (() => void) | null
}

async function startSystem (kind: Kind, redisUrl: string, instances: number, subscribers: number, libUrl: string): Promise<System> {
  const servers = await Promise.all(Array.from({ length: instances }, (_, i) => IpcChild.start(SELF, {
    name: `${kind} #${i}`,
    env: { BENCH_ROLE: 'server', BENCH_KIND: kind, BENCH_REDIS: redisUrl, BENCH_LIB: libUrl }
  })))
  const system: System = { kind, servers, clients: [], publisher: null as unknown as Client, delivered: 0, target: 0, reached: null }
  const onMessage = (): void => {
    if (++system.delivered === system.target) system.reached?.()
  }
  for (const server of servers) {
    const port = Number(server.ready.port)
    for (let i = 0; i < subscribers; i++) system.clients.push(await connect(kind, port, onMessage))
  }
  system.publisher = await connect(kind, Number(servers[0].ready.port), () => {})
  return system
}

/** Publish `messages` in windows of 50, each awaited until every subscriber has it. */
async function publish (system: System, messages: number, payload: string, perMessage: number): Promise<void> {
  for (let sent = 0; sent < messages;) {
    const window = Math.min(50, messages - sent)
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${system.kind}: deliveries stalled at ${system.delivered}/${system.target}`)), 60_000)
      system.reached = () => { clearTimeout(timer); resolve() }
    })
    system.target = system.delivered + window * perMessage
    for (let i = 0; i < window; i++) system.publisher.send(payload)
    await done
    sent += window
  }
}

async function cpuMicros (system: System): Promise<number> {
  const replies = await Promise.all(system.servers.map((s) => s.request('cpu')))
  return replies.reduce((sum, r) => sum + Number(r.micros), 0)
}

async function redisCpuMicros (redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0)
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0)
  return (user + sys) * 1e6
}

interface Sample { deliveries: number, seconds: number, serverCpu: number, redisCpu: number }

async function measure (system: System, redis: Redis, messages: number, payload: string, perMessage: number): Promise<Sample> {
  const cpu0 = await cpuMicros(system)
  const redis0 = await redisCpuMicros(redis)
  const delivered0 = system.delivered
  const t0 = process.hrtime.bigint()
  await publish(system, messages, payload, perMessage)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const serverCpu = (await cpuMicros(system) - cpu0) / 1e6
  const redisCpu = (await redisCpuMicros(redis) - redis0) / 1e6
  return { deliveries: system.delivered - delivered0, seconds, serverCpu, redisCpu }
}

async function main (): Promise<void> {
  const instances = arg('instances', 3)
  const subscribers = arg('subscribers', 300)
  const messages = arg('messages', 2000)
  const size = arg('size', 64)
  const rounds = arg('rounds', 3)
  const payload = 'x'.repeat(size)
  const perMessage = instances * subscribers
  const kinds = (process.argv.find((a) => a.startsWith('--systems='))?.slice(10).split(',') ?? ['fastify-rfc6455', 'socket.io']) as Kind[]
  const libUrl = kinds.includes('fastify-rfc6455') ? buildLib(ROOT, 'cross-instance') : ''
  const server = await startRedis()
  const redis = new Redis(server.url)
  const systems: System[] = []
  try {
    for (const kind of kinds) systems.push(await startSystem(kind, server.url, instances, subscribers, libUrl))
    for (const system of systems) await publish(system, 200, payload, perMessage) // warm-up
    const samples = new Map<Kind, Sample[]>(systems.map((s) => [s.kind, []]))
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? systems : [...systems].reverse()
      for (const system of order) samples.get(system.kind)?.push(await measure(system, redis, messages, payload, perMessage))
    }
    report(samples, { instances, subscribers, messages, size, rounds })
  } finally {
    for (const system of systems) {
      for (const client of [...system.clients, system.publisher]) client.close()
      await Promise.all(system.servers.map((s) => s.kill()))
    }
    redis.disconnect()
    await server.stop()
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function report (samples: Map<Kind, Sample[]>, setup: Record<string, number>): void {
  console.log(`cross-instance: ${setup.instances} instances x ${setup.subscribers} subscribers, one publisher, ${setup.messages} messages of ${setup.size} B per round, ${setup.rounds} rounds (medians)`)
  console.log('| system | deliveries/s | server CPU µs/delivery | deliveries per server CPU-second | redis CPU µs/delivery |')
  console.log('|---|---|---|---|---|')
  const perCpu = new Map<Kind, number>()
  for (const [kind, list] of samples) {
    const rate = median(list.map((s) => s.deliveries / s.seconds))
    const cpu = median(list.map((s) => s.serverCpu * 1e6 / s.deliveries))
    const redisCpu = median(list.map((s) => s.redisCpu * 1e6 / s.deliveries))
    perCpu.set(kind, 1e6 / cpu)
    console.log(`| ${kind} | ${Math.round(rate).toLocaleString('en')} | ${cpu.toFixed(2)} | ${Math.round(1e6 / cpu).toLocaleString('en')} | ${redisCpu.toFixed(3)} |`)
  }
  const ours = perCpu.get('fastify-rfc6455')
  const theirs = perCpu.get('socket.io')
  if (ours !== undefined && theirs !== undefined) console.log(`\nfastify-rfc6455 / socket.io, deliveries per server CPU-second: ${(ours / theirs).toFixed(2)}x`)
}

if (process.env.BENCH_ROLE === 'server') await serverMain()
else await main()
