/**
 * What the diagnostics channels and metrics cost: echo throughput of 32-byte messages through
 *   - base: the plugin as it is at BASE_REF (default `main`), extracted with `git archive`
 *   - none: this tree, nobody subscribed to a `fastify-rfc6455:*` channel
 *   - subscribed: this tree, one subscriber on every channel
 * in one run, in interleaved rounds (base, none, subscribed, base, ...), reporting the median
 * messages per second of each and the ratios. Server and clients share this process (the
 * channels are per process, so the three run one after the other, never at once).
 *
 * Run: npm run bench:diagnostics   (ROUNDS=5, SECONDS=2, CLIENTS=32, WINDOW=16, BASE_REF=main)
 */
import diagnosticsChannel from 'node:diagnostics_channel'
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import Fastify, { type FastifyPluginCallback } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import ours from '../lib/index.js'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const SECONDS = Number(process.env.SECONDS ?? 2)
const CLIENTS = Number(process.env.CLIENTS ?? 32)
const WINDOW = Number(process.env.WINDOW ?? 16)
const BASE_REF = process.env.BASE_REF ?? 'main'
const CHANNELS = ['upgrade:refused', 'open', 'close', 'message:received', 'message:sent', 'backpressure', 'heartbeat:timeout', 'error']
  .map((name) => `fastify-rfc6455:${name}`)

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** BASE_REF's lib/, extracted under bench/results (inside the tree, so its imports resolve). */
async function loadBase (): Promise<FastifyPluginCallback> {
  const dir = resolve(ROOT, 'bench/results/diagnostics-base.tmp')
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const archive = execFileSync('git', ['archive', BASE_REF, 'lib'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 })
  execFileSync('tar', ['-x', '-C', dir], { input: archive })
  const mod = await import(pathToFileURL(resolve(dir, 'lib/index.ts')).href) as { default: FastifyPluginCallback }
  return mod.default
}

/** One round: CLIENTS clients keep WINDOW 32-byte messages in flight for SECONDS; messages/s. */
async function round (plugin: FastifyPluginCallback): Promise<number> {
  const app = Fastify()
  await app.register(plugin)
  ;(app as unknown as { ws (path: string, handler: (socket: { on (e: string, f: (d: Buffer, b: boolean) => void): void, send (d: Buffer | string): void }) => void): void })
    .ws('/echo', (socket) => { socket.on('message', (data, binary) => socket.send(binary ? data : data.toString())) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const payload = 'x'.repeat(32)
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => new Promise<WsClient>((resolve, reject) => {
    const ws = new WsClient(`ws://127.0.0.1:${port}/echo`, { perMessageDeflate: false })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })))
  let received = 0
  let running = true
  for (const ws of clients) {
    ws.on('message', () => {
      received++
      if (running) ws.send(payload)
    })
    for (let i = 0; i < WINDOW; i++) ws.send(payload)
  }
  const start = process.hrtime.bigint()
  const startCount = received
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
  const count = received - startCount
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  running = false
  for (const ws of clients) ws.terminate()
  await app.close()
  return count / elapsed
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

const base = await loadBase()
const results = { base: [] as number[], none: [] as number[], subscribed: [] as number[] }
let published = 0
const subscriber = (): void => { published++ }
// warm-up: each variant once, unmeasured
await round(base)
await round(ours as unknown as FastifyPluginCallback)
for (let i = 0; i < ROUNDS; i++) {
  results.base.push(await round(base))
  results.none.push(await round(ours as unknown as FastifyPluginCallback))
  for (const name of CHANNELS) diagnosticsChannel.subscribe(name, subscriber)
  results.subscribed.push(await round(ours as unknown as FastifyPluginCallback))
  for (const name of CHANNELS) diagnosticsChannel.unsubscribe(name, subscriber)
  console.error(`round ${i + 1}/${ROUNDS}: base ${results.base[i].toFixed(0)}, none ${results.none[i].toFixed(0)}, subscribed ${results.subscribed[i].toFixed(0)} msg/s`)
}
const m = { base: median(results.base), none: median(results.none), subscribed: median(results.subscribed) }
const spread = (values: number[]): string => `${((Math.max(...values) - Math.min(...values)) / median(values) * 100).toFixed(1)}%`
console.log(`echo 32 B, ${CLIENTS} clients x ${WINDOW} in flight, ${ROUNDS} rounds of ${SECONDS} s (median msg/s, max-min spread)`)
console.log(`  base (${BASE_REF})        ${m.base.toFixed(0).padStart(8)}  spread ${spread(results.base)}`)
console.log(`  none subscribed    ${m.none.toFixed(0).padStart(8)}  spread ${spread(results.none)}`)
console.log(`  all subscribed     ${m.subscribed.toFixed(0).padStart(8)}  spread ${spread(results.subscribed)}  (${published} messages published)`)
console.log(`  none / base        ${(m.none / m.base).toFixed(3)}`)
console.log(`  subscribed / none  ${(m.subscribed / m.none).toFixed(3)}`)
rmSync(resolve(ROOT, 'bench/results/diagnostics-base.tmp'), { recursive: true, force: true })
