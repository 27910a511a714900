/**
 * A reconnect storm: C clients of one topic, spread over 2 server instances sharing one
 * redis-server, all drop at once, M publications are made while they are away, and all C come
 * back at once, each to the OTHER instance, asking for what it missed. Measured from the moment
 * they reconnect until every client holds its M missed messages:
 * - the servers' CPU time (process.cpuUsage() of both instance processes), per client;
 * - the Redis commands run (INFO commandstats after CONFIG RESETSTAT), per client, by command;
 * - Redis's own CPU (INFO cpu) and the wall time.
 *
 * Systems, each on its own redis-server, rounds repeated on the same clients:
 * - fastify-rfc6455 (compiled as users run it) with `history` and `redisAdapter()`: a client
 *   comes back with `?resume={"storm":[epoch, offset]}` and gets `subscribed` then the missed
 *   publications;
 * - socket.io with `@socket.io/redis-streams-adapter` and its connection state recovery: a client
 *   comes back with the `pid` and `offset` of its session (what socket.io-client sends when it
 *   reconnects) and the server replays the packets it missed.
 *
 * `--others=N`: N more publications per round on 100 other topics while the clients are away
 * (an app has more than one topic; socket.io's adapter keeps every room in one stream).
 *
 * Run: npm run bench:resume -- [--clients=1000] [--missed=20] [--others=0] [--rounds=3] [--systems=fastify-rfc6455,socket.io]
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
const TOPIC = 'storm'
type Kind = 'fastify-rfc6455' | 'socket.io'

function arg (name: string, fallback: number): number {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found === undefined ? fallback : Number(found.slice(name.length + 3))
}

// ---- server side (a child process per instance) ----------------------------------------------

interface Served { port: number, publish (n: number, topic?: string): void, count (): number }

async function serveOurs (redisUrl: string): Promise<Served> {
  const libUrl = process.env.BENCH_LIB ?? pathToFileURL(`${ROOT}lib/index.ts`).href
  const { default: websocket } = await import(libUrl) as typeof import('../lib/index.js')
  const { redisAdapter } = await import(libUrl.replace(/index\.(js|ts)$/, 'redis.$1')) as typeof import('../lib/redis.js')
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  await app.register(websocket, { adapter: redisAdapter({ url: redisUrl }), history: { maxMessages: 100 } })
  app.ws('/sub', (socket) => { socket.subscribe(TOPIC) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    port: (app.server.address() as { port: number }).port,
    publish: (n, topic = TOPIC) => { app.publish(topic, { n }) },
    count: () => app.subscriberCount(TOPIC)
  }
}

async function serveSocketIo (redisUrl: string): Promise<Served> {
  const { createServer } = await import('node:http')
  const { Server } = await import('socket.io')
  const { createAdapter } = await import('@socket.io/redis-streams-adapter')
  const http = createServer()
  const server = new Server(http, {
    transports: ['websocket'],
    adapter: createAdapter(new Redis(redisUrl)),
    connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true }
  })
  server.on('connection', (socket) => {
    // a recovered socket is back in its rooms already
    if (!socket.recovered) void socket.join(TOPIC)
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  return {
    port: (http.address() as { port: number }).port,
    publish: (n, topic = TOPIC) => { server.to(topic).emit('m', { n }) },
    count: () => server.of('/').sockets.size
  }
}

async function serverMain (): Promise<void> {
  const kind = process.env.BENCH_KIND as Kind
  const redisUrl = String(process.env.BENCH_REDIS)
  const served = kind === 'socket.io' ? await serveSocketIo(redisUrl) : await serveOurs(redisUrl)
  serveIpc({
    cpu: () => { const { user, system } = process.cpuUsage(); return { micros: user + system } },
    publish: (message) => {
      const topics = message.topics === undefined ? undefined : Number(message.topics)
      for (let n = Number(message.from); n < Number(message.from) + Number(message.count); n++) served.publish(n, topics === undefined ? undefined : `other-${n % topics}`)
      return {}
    },
    count: () => ({ count: served.count() })
  })
  notifyParent({ type: 'ready', port: served.port })
}

// ---- load side --------------------------------------------------------------------------------

/** One client of the topic: it counts the messages it receives and can drop and come back. */
interface Client {
  received: number
  /** close the connection the way a network loss does (no goodbye the server could act on) */
  drop (): void
  /** connect to `port`, resuming; resolves once open */
  resume (port: number): Promise<void>
}

class OurClient implements Client {
  received = 0
  private ws: WsClient | null = null
  private position: [string, number] | null = null
  constructor (private readonly onMessage: () => void) {}

  async resume (port: number): Promise<void> {
    const query = this.position === null ? '' : `?resume=${encodeURIComponent(JSON.stringify({ [TOPIC]: this.position }))}`
    const ws = this.ws = new WsClient(`ws://127.0.0.1:${port}/sub${query}`, { perMessageDeflate: false })
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { type: string, epoch: string, offset: number, recovered?: number | false }
      if (message.type === 'subscribed') {
        // recovered K > 0: the K publications that follow carry the position on
        if (message.recovered === 0 || message.recovered === false) this.position = [message.epoch, message.offset]
        return
      }
      this.position = [message.epoch, message.offset]
      this.received++
      this.onMessage()
    })
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  }

  drop (): void {
    this.ws?.terminate()
  }
}

class SocketIoClient implements Client {
  received = 0
  private socket: IoSocket | null = null
  constructor (private readonly onMessage: () => void) {}

  async resume (port: number): Promise<void> {
    const old = this.socket as unknown as { _pid?: string, _lastOffset?: string } | null
    // what socket.io-client sends in its CONNECT packet when it reconnects by itself
    const auth = old?._pid === undefined ? {} : { pid: old._pid, offset: old._lastOffset }
    const socket = this.socket = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false, forceNew: true, auth })
    socket.on('m', () => { this.received++; this.onMessage() })
    await new Promise<void>((resolve, reject) => { socket.once('connect', () => resolve()); socket.once('connect_error', reject) })
    // the new socket keeps the session's id, for the next round
    const fresh = socket as unknown as { _pid?: string }
    if (fresh._pid === undefined && old?._pid !== undefined) fresh._pid = old._pid
  }

  drop (): void {
    // the transport closes without a socket.io DISCONNECT packet: the server keeps the session
    this.socket?.io.engine.close()
  }
}

interface System { kind: Kind, servers: IpcChild[], ports: number[], clients: Client[], witness: Client, delivered: number, target: number, reached: (() => void) | null, redis: Redis, stop (): Promise<void> }

async function startSystem (kind: Kind, clients: number, libUrl: string): Promise<System> {
  const server = await startRedis()
  const redis = new Redis(server.url)
  const servers = await Promise.all([0, 1].map((i) => IpcChild.start(SELF, {
    name: `${kind} #${i}`,
    env: { BENCH_ROLE: 'server', BENCH_KIND: kind, BENCH_REDIS: server.url, BENCH_LIB: libUrl }
  })))
  const ports = servers.map((s) => Number(s.ready.port))
  const system: System = {
    kind, servers, ports, clients: [], witness: null as unknown as Client, delivered: 0, target: -1, reached: null, redis,
    stop: async () => { await Promise.all(servers.map((s) => s.kill())); redis.disconnect(); await server.stop() }
  }
  const onMessage = (): void => { if (++system.delivered === system.target) system.reached?.() }
  const make = (): Client => kind === 'socket.io' ? new SocketIoClient(onMessage) : new OurClient(onMessage)
  system.witness = make()
  await system.witness.resume(ports[0])
  for (let i = 0; i < clients; i++) {
    const client = make()
    await client.resume(ports[i % 2])
    system.clients.push(client)
  }
  return system
}

function deliveries (system: System, target: number, what: string): Promise<void> {
  if (system.delivered >= target) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${system.kind}: ${what} stalled at ${system.delivered}/${target}`)), 300_000)
    system.target = target
    system.reached = () => { clearTimeout(timer); system.reached = null; resolve() }
  })
}

async function counts (system: System): Promise<number[]> {
  return Promise.all(system.servers.map(async (s) => Number((await s.request('count')).count)))
}

/** Until `check` holds for the servers' local client counts (asked every 20 ms, deadline 60 s). */
async function serversHold (system: System, check: (counts: number[]) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (!check(await counts(system))) {
    if (Date.now() > deadline) throw new Error(`${system.kind}: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function cpuMicros (system: System): Promise<number> {
  const replies = await Promise.all(system.servers.map((s) => s.request('cpu')))
  return replies.reduce((sum, r) => sum + Number(r.micros), 0)
}

async function redisCpuMicros (redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  return (Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0)) * 1e6
}

/** The bench's own commands, not counted. */
const OURS = new Set(['info', 'config|resetstat'])

/**
 * Calls per command since the last CONFIG RESETSTAT. Redis counts the commands a Lua script
 * runs too: EVALSHA is the one round trip, the commands it ran are listed beside it.
 */
async function commandCalls (redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>()
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!OURS.has(match[1])) calls.set(match[1], Number(match[2]))
  }
  return calls
}

interface Sample { seconds: number, serverCpu: number, redisCpu: number, calls: Map<string, number> }

let published = 0

async function round (system: System, clients: number, missed: number, others: number, round: number): Promise<Sample> {
  // everyone is connected and up to date
  await serversHold(system, (c) => c[0] + c[1] === clients + 1, 'every client connected')
  system.clients.forEach((c) => c.drop())
  await serversHold(system, (c) => c[0] + c[1] === 1, 'every client gone')
  // published while they are away; the witness (on instance 0) sees them land
  const before = system.delivered
  // publications on 100 other topics nobody of the storm subscribed to, made before the missed
  // ones on the same connection: they are in Redis when the witness has the missed ones
  if (others > 0) await system.servers[0].request('publish', { from: 1, count: others, topics: 100 })
  await system.servers[0].request('publish', { from: published + 1, count: missed })
  published += missed
  await deliveries(system, before + missed, 'the witness')
  const expected = system.delivered + clients * missed
  await system.redis.config('RESETSTAT')
  const redis0 = await redisCpuMicros(system.redis)
  const cpu0 = await cpuMicros(system)
  const t0 = process.hrtime.bigint()
  // every client comes back at once, to the other instance than the one it left
  const landed = deliveries(system, expected, 'the replay')
  await Promise.all(system.clients.map((c, i) => c.resume(system.ports[(i + round + 1) % 2])))
  await landed
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const serverCpu = (await cpuMicros(system) - cpu0) / 1e6
  const calls = await commandCalls(system.redis)
  const redisCpu = (await redisCpuMicros(system.redis) - redis0) / 1e6
  return { seconds, serverCpu, redisCpu, calls }
}

async function main (): Promise<void> {
  const clients = arg('clients', 1000)
  const missed = arg('missed', 20)
  const rounds = arg('rounds', 3)
  const others = arg('others', 0)
  const kinds = (process.argv.find((a) => a.startsWith('--systems='))?.slice(10).split(',') ?? ['fastify-rfc6455', 'socket.io']) as Kind[]
  const libUrl = kinds.includes('fastify-rfc6455') ? buildLib(ROOT, 'resume-storm') : ''
  const results = new Map<Kind, Sample[]>()
  for (const kind of kinds) {
    published = 0
    const system = await startSystem(kind, clients, libUrl)
    try {
      // warm-up: the clients have a position (socket.io: a session offset) to come back from
      const before = system.delivered
      await system.servers[0].request('publish', { from: 1, count: 5 })
      published = 5
      await deliveries(system, before + 5 * (clients + 1), 'warm-up')
      const samples: Sample[] = []
      for (let r = 0; r < rounds + 1; r++) {
        const sample = await round(system, clients, missed, others, r)
        // the first storm warms the JIT and the connections: not kept
        if (r > 0) samples.push(sample)
      }
      results.set(kind, samples)
    } finally {
      system.clients.forEach((c) => c.drop())
      system.witness.drop()
      await system.stop()
    }
  }
  report(results, { clients, missed, rounds, others })
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function report (results: Map<Kind, Sample[]>, setup: { clients: number, missed: number, rounds: number, others: number }): void {
  console.log(`resume storm: ${setup.clients} clients on 2 instances drop, ${setup.missed} publications while away (and ${setup.others} on 100 other topics), all resume at once on the other instance; ${setup.rounds} rounds (medians)`)
  console.log('| system | wall ms | server CPU ms | server CPU µs/client | Redis commands/client | Redis CPU µs/client | commands (per client) |')
  console.log('|---|---|---|---|---|---|---|')
  for (const [kind, samples] of results) {
    const perClient = (v: number): number => v / setup.clients
    const total = (s: Sample): number => [...s.calls.values()].reduce((a, b) => a + b, 0)
    const byCommand = new Map<string, number[]>()
    for (const s of samples) for (const [name, calls] of s.calls) byCommand.set(name, [...(byCommand.get(name) ?? []), calls])
    const commands = [...byCommand].map(([name, list]) => `${name} ${perClient(median(list)).toFixed(2)}`).join(', ')
    console.log(`| ${kind} | ${Math.round(median(samples.map((s) => s.seconds * 1000)))} | ${Math.round(median(samples.map((s) => s.serverCpu * 1000)))} | ${Math.round(median(samples.map((s) => perClient(s.serverCpu * 1e6))))} | ${perClient(median(samples.map(total))).toFixed(2)} | ${perClient(median(samples.map((s) => s.redisCpu * 1e6))).toFixed(1)} | ${commands} |`)
  }
}

if (process.env.BENCH_ROLE === 'server') await serverMain()
else await main()
