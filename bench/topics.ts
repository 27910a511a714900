/**
 * `npm run bench:topics`: a burst of 50 publications of 64 B to 1,000 subscribers in one tick,
 * server CPU per delivery. The plugin publishes to a topic every connection is subscribed to
 * (`app.publish`); `ws` and `@fastify/websocket` loop over `ws.send()` for each message, as an
 * app does without topics. Each server runs in its own process pinned to core 1 (bench/harness.ts);
 * this process is the load generator on core 0.
 *
 * Options: --rounds=N (3)  --bursts=N per measurement (20)  --count=N messages per burst (50)
 *          --connections=N (1000)  --size=B (64)  --servers=ours,ws,fastify-websocket
 *          --base=<dir> also run the plugin from <dir> (a copy of the repository before a change)
 */
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { closeAll, connect, countDeliveries } from './load/client.js'
import { buildLib, cpuSeconds, pinSelf, ServerProcess, setBaseLib, setOurLib } from './harness.js'
import type { ServerKind } from './protocol.js'

const args = process.argv.slice(2)
function option (name: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`--${name}=`))
  return hit === undefined ? undefined : hit.slice(name.length + 3)
}
const rounds = Number(option('rounds') ?? 3)
const bursts = Number(option('bursts') ?? 20)
const count = Number(option('count') ?? 50)
const connections = Number(option('connections') ?? 1000)
const size = Number(option('size') ?? 64)
const servers = (option('servers')?.split(',') ?? ['ours', 'ws', 'fastify-websocket']) as ServerKind[]
if (servers.includes('ours')) setOurLib(buildLib(fileURLToPath(new URL('..', import.meta.url)), 'current'))
const base = option('base')
if (base !== undefined) {
  setBaseLib(buildLib(base, 'base'))
  if (!servers.includes('ours-base')) servers.splice(1, 0, 'ours-base')
}
const LABEL: Partial<Record<ServerKind, string>> = {
  ours: 'fastify-rfc6455 app.publish',
  'ours-base': 'fastify-rfc6455 (--base)',
  ws: 'ws + bufferutil, ws.send loop',
  'ws-nobu': 'ws (no bufferutil), ws.send loop',
  'fastify-websocket': '@fastify/websocket, send loop',
  raw: 'raw TCP, write loop'
}

async function waitFor (condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

async function subscribers (port: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = []
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < connections) {
      next++
      const { socket } = await connect(port, '/topic')
      socket.on('error', () => {})
      sockets.push(socket)
    }
  }
  await Promise.all(Array.from({ length: 50 }, worker))
  return sockets
}

interface Sample { usPerDelivery: number, kernelUs: number, deliveriesPerSecond: number }

async function measure (kind: ServerKind): Promise<Sample> {
  const server = await ServerProcess.start(kind)
  try {
    const sockets = await subscribers(server.port)
    await waitFor(async () => (await server.request('stats')).connections === connections, 30_000, 'subscribers')
    const delivered = countDeliveries(sockets)
    const run = async (n: number): Promise<Sample> => {
      const s0 = await server.request('stats')
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < n; i++) {
        const target = delivered() + count * sockets.length
        await server.request('burst', { count, size })
        await waitFor(() => delivered() >= target, 60_000, 'burst deliveries')
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9
      const s1 = await server.request('stats')
      const deliveries = n * count * sockets.length
      return {
        usPerDelivery: cpuSeconds(s0.cpu, s1.cpu) / deliveries * 1e6,
        kernelUs: (s1.cpu.system - s0.cpu.system) / deliveries,
        deliveriesPerSecond: deliveries / seconds
      }
    }
    await run(Math.max(1, bursts >> 2)) // warm-up
    const sample = await run(bursts)
    closeAll(sockets)
    return sample
  } finally {
    await server.stop()
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

pinSelf()
console.log(`bench:topics: ${rounds} round(s), ${bursts} bursts of ${count} x ${size} B to ${connections} subscribers, node ${process.version}`)
const results = new Map<ServerKind, Sample[]>()
const ratios = new Map<ServerKind, number[]>()
for (let round = 0; round < rounds; round++) {
  // servers interleaved, the order rotated per round
  const order = servers.map((_, i) => servers[(i + round) % servers.length])
  const thisRound = new Map<ServerKind, Sample>()
  for (const kind of order) {
    const sample = await measure(kind)
    thisRound.set(kind, sample)
    ;(results.get(kind) ?? results.set(kind, []).get(kind)!).push(sample)
    console.log(`  round ${round + 1} ${LABEL[kind] ?? kind}: ${sample.usPerDelivery.toFixed(3)} µs CPU/delivery (kernel ${sample.kernelUs.toFixed(3)}), ${(sample.deliveriesPerSecond / 1e6).toFixed(2)}M deliveries/s`)
  }
  const reference = thisRound.get('ws')
  if (reference !== undefined) {
    for (const [kind, sample] of thisRound) (ratios.get(kind) ?? ratios.set(kind, []).get(kind)!).push(sample.usPerDelivery / reference.usPerDelivery)
  }
}

console.log('\n| server | µs CPU per delivery (median, min–max) | kernel µs | ratio to ws (paired, lower is better) | deliveries/s |')
console.log('|---|---:|---:|---:|---:|')
for (const kind of servers) {
  const samples = results.get(kind) ?? []
  const us = samples.map((s) => s.usPerDelivery)
  const ratio = ratios.get(kind)
  console.log(`| ${LABEL[kind] ?? kind} | ${median(us).toFixed(3)} (${Math.min(...us).toFixed(3)}–${Math.max(...us).toFixed(3)}) | ` +
    `${median(samples.map((s) => s.kernelUs)).toFixed(3)} | ${ratio === undefined ? '–' : `${median(ratio).toFixed(3)}x`} | ` +
    `${(median(samples.map((s) => s.deliveriesPerSecond)) / 1e6).toFixed(2)}M |`)
}
