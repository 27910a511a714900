/**
 * `npm run bench` (full) or `npm run bench -- --quick` (about a minute).
 * Options: --only=echo-32B,handshake-50  --servers=ours,ws  --rounds=N  --seconds=S  --idle=N
 *          --base=<dir>  also run the plugin from <dir> (before/after comparisons)
 *          --tsx         run the plugin's TypeScript through tsx instead of compiling it first
 *          --heap-snapshot=<prefix>  write a heap snapshot of each server holding the idle connections
 *          --cpu-prof=ours (write a V8 CPU profile of that server to bench/results/prof/)
 *          --ballast=MiB size of the live JS heap every server holds in the echo scenarios' second
 *                        run (default 16; 0 runs the echo scenarios bare only)
 *
 * Each server runs in its own process pinned to core 1; this process (the load generator) pins
 * itself to core 0. Rounds interleave the servers (A B C D E, B C D E A, ...) and ratios are
 * paired per round against `ws` with bufferutil.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import type { Socket } from 'node:net'
import os from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { closeAll, connectMany, countDeliveries, handshakeLoop, startEcho, startRoundTrips } from './load/client.js'
import { buildLib, bunBinary, cpuSeconds, cpuShare, hasTaskset, pinSelf, ServerProcess, setBaseLib, setOurLib } from './harness.js'
import type { ServerKind } from './protocol.js'
import { sharedReadBufferSupported } from '../lib/connection/shared-reads.js'

const args = process.argv.slice(2)
function option (name: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`--${name}=`))
  return hit === undefined ? undefined : hit.slice(name.length + 3)
}
const quick = args.includes('--quick')
const rounds = Number(option('rounds') ?? (quick ? 1 : 3))
const measureMs = Number(option('seconds') ?? (quick ? 0.6 : 2.5)) * 1000
const warmupMs = quick ? 250 : 700
const idleConnections = Number(option('idle') ?? (quick ? 2000 : 10000))
const broadcastCount = quick ? 20 : 100
/** burst scenario: messages published in one tick, and bursts per measurement */
const burstCount = 50
const burstsPerMeasurement = quick ? 5 : 20
const cpuProf = option('cpu-prof')
/** extra node flags for the servers, e.g. --node-flags="--trace-gc" */
const nodeFlags = option('node-flags')
/**
 * --ballast=MiB: every echo scenario runs twice, bare and with every server keeping about that
 * much extra JS heap alive (plain objects, passed as BENCH_BALLAST_MIB), so all of them run with
 * the old-generation size of a real app; see the README on V8's heap sizing. Default 16, 0: bare
 * only.
 */
const ballastMiB = Number(option('ballast') ?? 16)

// Bun (`Bun.serve`) is a reference when the @oven/bun-linux-x64 devDependency is installed and runs
const bunPath = bunBinary()
const ALL_SERVERS: ServerKind[] = ['ours', 'ours-lent', 'ws', 'ws-nobu', 'fastify-websocket', 'raw', ...(bunPath === null ? [] : ['bun' as const])]
const servers = (option('servers')?.split(',') as ServerKind[] | undefined) ?? ALL_SERVERS
// the plugin runs compiled by the project's build, as users run it (see buildLib); --tsx runs
// the TypeScript sources through tsx instead (quicker to iterate, more memory per connection)
const viaTsx = args.includes('--tsx')
if (!viaTsx && (servers.includes('ours') || servers.includes('ours-bare') || servers.includes('ours-lent'))) setOurLib(buildLib(fileURLToPath(new URL('..', import.meta.url)), 'current'))
const base = option('base')
if (base !== undefined) {
  // --base=<dir>: also run the plugin from <dir> (a copy of the repository, or of its lib/ with
  // tsconfig.json and tsconfig.build.json, from before a change)
  setBaseLib(viaTsx
    ? pathToFileURL(resolve(base, 'lib/index.ts')).href
    : buildLib(base, 'base'))
  if (!servers.includes('ours-base')) servers.splice(1, 0, 'ours-base')
}
const REFERENCE: ServerKind = 'ws'
const LABEL: Record<ServerKind, string> = {
  ours: 'fastify-rfc6455',
  'ours-base': 'fastify-rfc6455 (--base)',
  'ours-bare': 'fastify-rfc6455 WebSocket on plain http (no Fastify)',
  'ours-lent': 'fastify-rfc6455, lentMessages: true',
  ws: 'ws + bufferutil',
  'ws-nobu': 'ws (no bufferutil)',
  'fastify-websocket': '@fastify/websocket',
  raw: 'raw TCP ceiling',
  bun: 'Bun.serve (uWebSockets)'
}

interface Scenario {
  name: string
  title: string
  unit: string
  /** true when a larger value is better */
  higher: boolean
  kind: 'echo' | 'latency' | 'handshake' | 'memory' | 'broadcast' | 'burst'
  /** every server holds the --ballast heap during this scenario */
  ballast?: boolean
  connections?: number
  size?: number
  binary?: boolean
  window?: number
  concurrency?: number
}

const ECHO: Scenario[] = [
  { name: 'echo-32B', title: 'echo 32 B text, 100 conns', unit: 'msg/s', higher: true, kind: 'echo', connections: 100, size: 32, binary: false, window: 64 },
  { name: 'echo-1KiB', title: 'echo 1 KiB binary, 100 conns', unit: 'msg/s', higher: true, kind: 'echo', connections: 100, size: 1024, binary: true, window: 16 },
  { name: 'echo-64KiB', title: 'echo 64 KiB binary, 10 conns', unit: 'msg/s', higher: true, kind: 'echo', connections: 10, size: 64 * 1024, binary: true, window: 16 },
  { name: 'echo-1MiB', title: 'echo 1 MiB binary, 4 conns', unit: 'msg/s', higher: true, kind: 'echo', connections: 4, size: 1024 * 1024, binary: true, window: 4 }
]
const SCENARIOS: Scenario[] = [
  ...ECHO,
  // the same echoes with every server holding a real app's heap (names: echo-64KiB-heap, ...)
  ...(ballastMiB > 0
    ? ECHO.map((s) => ({ ...s, name: `${s.name}-heap`, title: `${s.title}, ${ballastMiB} MiB heap`, ballast: true }))
    : []),
  // request-reply latency: one connection, one message in flight (median round trip; p99 in the note)
  { name: 'latency-32B', title: 'round trip 32 B text, 1 conn, one in flight', unit: 'µs median', higher: false, kind: 'latency', size: 32, binary: false },
  { name: 'latency-64KiB', title: 'round trip 64 KiB binary, 1 conn, one in flight', unit: 'µs median', higher: false, kind: 'latency', size: 64 * 1024, binary: true },
  { name: 'handshake-seq', title: 'handshakes, sequential', unit: 'conn/s', higher: true, kind: 'handshake', concurrency: 1 },
  { name: 'handshake-50', title: 'handshakes, 50 concurrent', unit: 'conn/s', higher: true, kind: 'handshake', concurrency: 50 },
  { name: 'memory-idle', title: `memory per idle conn (${idleConnections})`, unit: 'KiB', higher: false, kind: 'memory' },
  { name: 'broadcast-64B', title: 'broadcast 64 B to 1,000 conns, one per tick', unit: 'µs CPU/delivery', higher: false, kind: 'broadcast', connections: 1000, size: 64 },
  { name: 'burst-64B', title: `burst of ${burstCount} x 64 B in one tick to 1,000 conns`, unit: 'µs CPU/delivery', higher: false, kind: 'burst', connections: 1000, size: 64 }
]
/**
 * `ours-lent` differs from `ours` only for binary messages of at least 16 KiB (the smallest lent
 * size, lib/connection/message-pool.ts): it runs in the large-message echo and latency scenarios
 * and is left out of the others, where it would measure the same code twice.
 */
function runsIn (kind: ServerKind, s: Scenario): boolean {
  if (kind !== 'ours-lent') return true
  return (s.kind === 'echo' || s.kind === 'latency') && s.binary === true && (s.size ?? 0) >= 16 * 1024
}
const only = option('only')?.split(',')
const scenarios = only === undefined ? SCENARIOS : SCENARIOS.filter((s) => only.includes(s.name))

interface Sample {
  round: number
  value: number
  serverCpu: number
  clientCpu: number
  /** server CPU µs per message / handshake / delivery: steadier than rates on a shared machine */
  cpuPerOp?: number
  note?: string
}

const results = new Map<string, Map<ServerKind, Sample[]>>()
function record (scenario: Scenario, kind: ServerKind, sample: Sample): void {
  let byServer = results.get(scenario.name)
  if (byServer === undefined) results.set(scenario.name, byServer = new Map())
  let list = byServer.get(kind)
  if (list === undefined) byServer.set(kind, list = [])
  list.push(sample)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor (condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

// ---- scenarios ----

async function runEcho (server: ServerProcess, s: Scenario, round: number): Promise<void> {
  const sockets = await connectMany(server.port, s.connections!, 50)
  const load = startEcho(sockets, s.size!, s.binary!, s.window!)
  await sleep(warmupMs)
  const s0 = await server.request('stats')
  const c0 = process.cpuUsage()
  const e0 = load.echoed()
  const t0 = process.hrtime.bigint()
  await sleep(measureMs)
  const e1 = load.echoed()
  const t1 = process.hrtime.bigint()
  const c1 = process.cpuUsage(c0)
  const s1 = await server.request('stats')
  load.stop()
  closeAll(sockets)
  const seconds = Number(t1 - t0) / 1e9
  const rate = (e1 - e0) / seconds
  record(s, server.kind, {
    round,
    value: rate,
    serverCpu: cpuShare(s0, s1),
    clientCpu: (c1.user + c1.system) / 1e6 / seconds,
    cpuPerOp: cpuSeconds(s0.cpu, s1.cpu) / (rate * (s1.time - s0.time)) * 1e6,
    note: `${(rate * s.size! / 1048576).toFixed(0)} MiB/s`
  })
  await waitFor(async () => (await server.request('stats')).connections === 0, 10_000, 'connections to close')
}

async function runLatency (server: ServerProcess, s: Scenario, round: number): Promise<void> {
  const [socket] = await connectMany(server.port, 1, 1)
  const load = startRoundTrips(socket, s.size!, s.binary!)
  await sleep(warmupMs)
  const skip = load.samples.length
  const s0 = await server.request('stats')
  const c0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  await sleep(measureMs)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const c1 = process.cpuUsage(c0)
  const s1 = await server.request('stats')
  load.stop()
  const samples = load.samples.slice(skip).sort((a, b) => a - b)
  closeAll([socket])
  const p99 = samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))]
  record(s, server.kind, {
    round,
    value: median(samples),
    serverCpu: cpuShare(s0, s1),
    clientCpu: (c1.user + c1.system) / 1e6 / seconds,
    cpuPerOp: cpuSeconds(s0.cpu, s1.cpu) / samples.length * 1e6,
    note: `p99 ${fmt(p99)} µs, ${samples.length} round trips`
  })
  await waitFor(async () => (await server.request('stats')).connections === 0, 10_000, 'connections to close')
}

async function runHandshake (server: ServerProcess, s: Scenario, round: number): Promise<void> {
  await handshakeLoop(server.port, s.concurrency!, warmupMs)
  const s0 = await server.request('stats')
  const c0 = process.cpuUsage()
  const { count, seconds } = await handshakeLoop(server.port, s.concurrency!, measureMs)
  const c1 = process.cpuUsage(c0)
  const s1 = await server.request('stats')
  record(s, server.kind, {
    round,
    value: count / seconds,
    serverCpu: cpuShare(s0, s1),
    cpuPerOp: cpuSeconds(s0.cpu, s1.cpu) / count * 1e6,
    clientCpu: (c1.user + c1.system) / 1e6 / seconds,
    note: `kernel ${((s1.cpu.system - s0.cpu.system) / count).toFixed(1)} µs`
  })
  await waitFor(async () => (await server.request('stats')).connections === 0, 10_000, 'connections to close')
}

async function runMemory (kind: ServerKind, s: Scenario, round: number): Promise<void> {
  const server = await ServerProcess.start(kind)
  try {
    // warm up the code paths so their compiled code is not counted per connection
    const warm = await connectMany(server.port, 50, 10)
    const load = startEcho(warm, 32, false, 4)
    await sleep(200)
    load.stop()
    closeAll(warm)
    await waitFor(async () => (await server.request('stats')).connections === 0, 10_000, 'warm-up connections to close')
    const before = await server.request('gc')
    const snapshot = option('heap-snapshot')
    if (snapshot !== undefined) {
      await server.request('snapshot', { path: `${snapshot}-${kind}-base.heapsnapshot` })
      await server.request('gc')
    }
    const c0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    const sockets = await connectMany(server.port, idleConnections, 100)
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const c1 = process.cpuUsage(c0)
    await waitFor(async () => (await server.request('stats')).connections === idleConnections, 30_000, 'idle connections')
    const after = await server.request('gc')
    if (snapshot !== undefined) await server.request('snapshot', { path: `${snapshot}-${kind}.heapsnapshot` })
    const perConn = (after.rss - before.rss) / idleConnections / 1024
    const heap = (after.heapUsed - before.heapUsed) / idleConnections / 1024
    const external = (after.external - before.external) / idleConnections / 1024
    record(s, kind, {
      round,
      value: perConn,
      serverCpu: cpuSeconds(before.cpu, after.cpu) / (after.time - before.time),
      clientCpu: (c1.user + c1.system) / 1e6 / seconds,
      note: `heap ${heap.toFixed(2)} + ext ${external.toFixed(2)} KiB`
    })
    closeAll(sockets)
  } finally {
    await server.stop()
  }
}

/**
 * Server CPU per delivery on 1,000 connections: `send(n)` has the server send n batches and
 * resolves once every connection got them all; a warm-up of a fifth, then the measurement.
 */
async function runDeliveries (
  server: ServerProcess, s: Scenario, round: number, sockets: Socket[], batches: number,
  send: (n: number, delivered: () => number) => Promise<void>, perBatch: number
): Promise<void> {
  const delivered = countDeliveries(sockets)
  const measure = async (n: number): Promise<{ serverCpu: number, system: number, seconds: number, clientCpu: number }> => {
    const c0 = process.cpuUsage()
    const s0 = await server.request('stats')
    const t0 = process.hrtime.bigint()
    await send(n, delivered)
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const s1 = await server.request('stats')
    const c1 = process.cpuUsage(c0)
    return { serverCpu: cpuSeconds(s0.cpu, s1.cpu), system: (s1.cpu.system - s0.cpu.system) / 1e6, seconds, clientCpu: (c1.user + c1.system) / 1e6 }
  }
  await measure(Math.max(1, Math.round(batches / 5)))
  const m = await measure(batches)
  const deliveries = batches * perBatch * sockets.length
  record(s, server.kind, {
    round,
    value: m.serverCpu / deliveries * 1e6,
    cpuPerOp: m.serverCpu / deliveries * 1e6,
    serverCpu: m.serverCpu / m.seconds,
    clientCpu: m.clientCpu / m.seconds,
    // the kernel's share (system time) of the server's CPU: the part no JavaScript change can cut
    note: `${(deliveries / m.seconds / 1000).toFixed(0)}k deliveries/s, kernel ${(m.system / deliveries * 1e6).toFixed(2)} µs`
  })
  closeAll(sockets)
  await waitFor(async () => (await server.request('stats')).connections === 0, 10_000, 'connections to close')
}

/** `broadcastCount` messages to every connection, one per event-loop turn */
async function runBroadcast (server: ServerProcess, s: Scenario, round: number): Promise<void> {
  const sockets = await connectMany(server.port, s.connections!, 50)
  await runDeliveries(server, s, round, sockets, broadcastCount, async (count, delivered) => {
    const target = delivered() + count * sockets.length
    await server.request('broadcast', { count, size: s.size })
    await waitFor(() => delivered() >= target, 60_000, 'broadcast deliveries')
  }, 1)
}

/**
 * Bursts of `burstCount` messages sent in one synchronous loop (one tick) to 1,000 connections
 * opened on `/topic`: this plugin and Bun publish to a topic they all subscribed to
 * (`app.publish()`, `server.publish()`), the others loop over `send()` per message and connection.
 */
async function runBurst (server: ServerProcess, s: Scenario, round: number): Promise<void> {
  const sockets = await connectMany(server.port, s.connections!, 50, '/topic')
  await waitFor(async () => (await server.request('stats')).connections === sockets.length, 30_000, 'subscribers')
  await runDeliveries(server, s, round, sockets, burstsPerMeasurement, async (bursts, delivered) => {
    for (let i = 0; i < bursts; i++) {
      const target = delivered() + burstCount * sockets.length
      await server.request('burst', { count: burstCount, size: s.size })
      await waitFor(() => delivered() >= target, 60_000, 'burst deliveries')
    }
  }, burstCount)
}

// ---- report ----

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function fmt (value: number): string {
  if (value >= 100_000) return `${(value / 1000).toFixed(0)}k`
  if (value >= 10_000) return `${(value / 1000).toFixed(1)}k`
  if (value >= 100) return value.toFixed(0)
  if (value >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

function table (): string {
  const lines = [
    '| scenario | server | median | min–max | ratio to ws (paired) | server CPU | client CPU | server µs/op (ratio) | note |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|'
  ]
  for (const s of scenarios) {
    const byServer = results.get(s.name)
    if (byServer === undefined) continue
    const reference = byServer.get(REFERENCE)
    for (const kind of servers) {
      const samples = byServer.get(kind)
      if (samples === undefined || samples.length === 0) continue
      const values = samples.map((x) => x.value)
      let ratio = '—'
      let perOp = '—'
      const perOps = samples.flatMap((x) => x.cpuPerOp === undefined ? [] : [x.cpuPerOp])
      if (perOps.length > 0) perOp = fmt(median(perOps))
      if (reference !== undefined) {
        const paired = samples.flatMap((x) => {
          const ref = reference.find((r) => r.round === x.round)
          return ref === undefined ? [] : [x.value / ref.value]
        })
        if (paired.length > 0) ratio = `${median(paired).toFixed(2)}x`
        const pairedOps = samples.flatMap((x) => {
          const ref = reference.find((r) => r.round === x.round)
          return ref?.cpuPerOp === undefined || x.cpuPerOp === undefined ? [] : [x.cpuPerOp / ref.cpuPerOp]
        })
        if (pairedOps.length > 0 && s.kind !== 'broadcast' && s.kind !== 'burst') perOp += ` (${median(pairedOps).toFixed(2)}x)`
      }
      const notes = samples.map((x) => x.note).filter((n) => n !== undefined)
      lines.push(`| ${s.title} (${s.unit}${s.higher ? '' : ', lower is better'}) | ${LABEL[kind]} | ${fmt(median(values))} | ` +
        `${fmt(Math.min(...values))}–${fmt(Math.max(...values))} | ${ratio} | ` +
        `${(median(samples.map((x) => x.serverCpu)) * 100).toFixed(0)}% | ${(median(samples.map((x) => x.clientCpu)) * 100).toFixed(0)}% | ${perOp} | ` +
        `${notes.length > 0 ? notes[notes.length >> 1] : ''} |`)
    }
  }
  return lines.join('\n')
}

function version (pkg: string): string {
  try {
    const path = fileURLToPath(new URL(`../node_modules/${pkg}/package.json`, import.meta.url))
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

// ---- main ----

const pinned = pinSelf()
const started = new Date()
console.log(`bench: ${quick ? 'quick' : 'full'} mode, ${rounds} round(s), ${measureMs} ms per measurement, ` +
  `taskset ${hasTaskset() ? (pinned ? 'on (server core 1, load core 0)' : 'available but pinning failed') : 'absent'}`)
// the servers run on this same Node binary, so this is their read path too
const readPath = `shared read buffer ${sharedReadBufferSupported() ? 'active' : 'not available: Node\'s own reads'}`
console.log(`bench: Node ${process.version}, ${readPath}`)
const bunVersion = bunPath === null ? null : execFileSync(bunPath, ['--version'], { encoding: 'utf8' }).trim()
console.log(`bench: Bun ${bunVersion ?? 'not measured: the @oven/bun-linux-x64 package is not installed or does not run here'}`)

/** the long-lived servers of one heap size: bare, and holding the ballast */
const longLived = new Map<boolean, Map<ServerKind, ServerProcess>>()
async function serversOf (withBallast: boolean): Promise<Map<ServerKind, ServerProcess>> {
  let group = longLived.get(withBallast)
  if (group !== undefined) return group
  longLived.set(withBallast, group = new Map())
  if (withBallast) process.env.BENCH_BALLAST_MIB = String(ballastMiB)
  else delete process.env.BENCH_BALLAST_MIB
  for (const kind of servers) {
    const flags = cpuProf === kind ? ['--cpu-prof', '--cpu-prof-dir=bench/results/prof'] : []
    if (nodeFlags !== undefined) flags.push(...nodeFlags.split(' '))
    group.set(kind, await ServerProcess.start(kind, flags))
  }
  delete process.env.BENCH_BALLAST_MIB
  return group
}

try {
  for (const s of scenarios) {
    for (let round = 0; round < rounds; round++) {
      const here = servers.filter((kind) => runsIn(kind, s))
      const order = here.map((_, i) => here[(i + round) % here.length])
      for (const kind of order) {
        const t = Date.now()
        if (s.kind === 'memory') await runMemory(kind, s, round)
        else {
          const server = (await serversOf(s.ballast === true)).get(kind)!
          if (s.kind === 'echo') await runEcho(server, s, round)
          else if (s.kind === 'latency') await runLatency(server, s, round)
          else if (s.kind === 'handshake') await runHandshake(server, s, round)
          else if (s.kind === 'burst') await runBurst(server, s, round)
          else await runBroadcast(server, s, round)
        }
        const last = results.get(s.name)?.get(kind)?.at(-1)
        console.log(`  ${s.name} round ${round + 1} ${LABEL[kind]}: ${last === undefined ? '-' : fmt(last.value)} ${s.unit} (${Date.now() - t} ms)`)
      }
    }
  }
} finally {
  for (const group of longLived.values()) for (const server of group.values()) await server.stop()
}

const cpus = os.cpus()
const header = [
  `# Benchmark results (${quick ? 'quick' : 'full'} run)`,
  '',
  `- date: ${started.toISOString()}`,
  `- machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}`,
  `- plugin ${viaTsx ? 'run from its TypeScript sources through tsx' : 'compiled with tsc (tsconfig.build.json), as users run it'}`,
  `- node ${process.version} (${readPath}); ws ${version('ws')}, bufferutil ${version('bufferutil')}, fastify ${version('fastify')}, @fastify/websocket ${version('@fastify/websocket')}`,
  `- ${rounds} round(s) of ${measureMs / 1000} s per server and scenario, servers interleaved per round; ` +
    `server pinned to core 1, load generator to core 0 (${pinned ? 'taskset' : 'not pinned'})`,
  ...(ballastMiB > 0 ? [`- "${ballastMiB} MiB heap" rows: every server holds that much extra live JS heap (--ballast), as a real app does`] : []),
  ...(bunVersion !== null ? [`- Bun ${bunVersion} (Bun.serve, the @oven/bun-linux-x64 package)`] : []),
  '- ratio: median over rounds of (server / ws with bufferutil) in the same round; for memory and broadcast lower is better',
  '- CPU columns: share of one core used during the measurement (a load generator near 100% would mean it was the limit);',
  '  server µs/op: server CPU time per message, handshake or delivery, with its paired ratio to ws (lower is better)',
  ''
].join('\n')
/** --base: the plugin's server CPU per operation against the base copy's, paired per round */
function baseComparison (): string {
  const lines: string[] = []
  for (const s of scenarios) {
    const ours = results.get(s.name)?.get('ours')
    const old = results.get(s.name)?.get('ours-base')
    if (ours === undefined || old === undefined) continue
    const ratios = ours.flatMap((x) => {
      const o = old.find((r) => r.round === x.round)
      return o?.cpuPerOp === undefined || x.cpuPerOp === undefined ? [] : [x.cpuPerOp / o.cpuPerOp]
    })
    if (ratios.length === 0) continue
    lines.push(`- ${s.name}: server CPU per op, this lib/ / --base, paired per round: median ${median(ratios).toFixed(3)}x ` +
      `(rounds: ${ratios.map((r) => r.toFixed(3)).join(', ')})`)
  }
  return lines.length === 0 ? '' : `\n${lines.join('\n')}\n`
}

const output = `${header}\n${table()}\n${baseComparison()}`
console.log(`\n${output}`)
if (only === undefined && option('servers') === undefined && option('ballast') === undefined) {
  const dir = fileURLToPath(new URL('./results/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  writeFileSync(`${dir}latest.md`, output)
  console.log('written to bench/results/latest.md')
}
