/**
 * Echo throughput with permessage-deflate: this library against `ws`, in the same run.
 *
 *   node --import tsx bench/deflate.ts [seconds=5] [clients=50]
 *   BENCH_PLAIN=1 node --import tsx bench/deflate.ts     (baseline without the extension)
 *
 * Each server runs in its own child process (same settings: threshold 1024, zlib defaults,
 * context takeover, 15-bit windows). The parent runs `clients` ws clients with deflate, each
 * keeping 4 messages in flight, for `seconds` per message size, and reports echoes per second,
 * the server's CPU time per echo and its memory at the end. The clients share the machine with
 * the server, so compare the two rows of one run, not runs on different machines.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { WebSocket as WsClient } from 'ws'

type Kind = 'fastify-rfc6455' | 'ws'
interface Stats { cpuMicros: number, rss: number, echoes: number }

// BENCH_PLAIN=1: the same run without the extension (a baseline for the deflate rows)
const PLAIN = process.env.BENCH_PLAIN === '1'
const DEFLATE = PLAIN ? false : { threshold: 1024 }

async function serve (kind: Kind): Promise<void> {
  let echoes = 0
  let port: number
  if (kind === 'ws') {
    const { WebSocketServer } = await import('ws')
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: DEFLATE, maxPayload: 16 << 20 })
    await new Promise<void>((resolve) => wss.once('listening', resolve))
    wss.on('connection', (ws) => {
      ws.on('message', (data, isBinary) => { echoes++; ws.send(data as Buffer, { binary: isBinary }) })
    })
    port = (wss.address() as { port: number }).port
  } else {
    const { default: Fastify } = await import('fastify')
    // BENCH_LIB: another copy of lib/ (e.g. a snapshot before a change) for a side-by-side run
    const { default: websocket } = await import(process.env.BENCH_LIB ?? '../lib/index.js') as typeof import('../lib/index.js')
    const app = Fastify({ logger: false })
    await app.register(websocket, { perMessageDeflate: DEFLATE, maxPayload: 16 << 20, heartbeatInterval: 0 })
    app.ws('/*', (socket) => {
      socket.on('message', (data: Buffer, isBinary: boolean) => { echoes++; socket.send(isBinary ? data : data.toString('utf8')) })
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    port = (app.server.address() as { port: number }).port
  }
  let cpuStart = process.cpuUsage()
  let echoStart = 0
  process.on('message', (msg: string) => {
    if (msg === 'reset') {
      cpuStart = process.cpuUsage()
      echoStart = echoes
      process.send!('ok')
    } else if (msg === 'stats') {
      const cpu = process.cpuUsage(cpuStart)
      const stats: Stats = { cpuMicros: cpu.user + cpu.system, rss: process.memoryUsage().rss, echoes: echoes - echoStart }
      process.send!(stats)
    } else if (msg === 'exit') {
      process.exit(0)
    }
  })
  process.send!({ port })
}

function request<T> (child: ChildProcess, msg: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (reply) => resolve(reply as T))
    child.send(msg)
  })
}

function payload (size: number): string {
  const items: string[] = []
  let n = 0
  for (let i = 0; n < size; i++) {
    const s = JSON.stringify({ id: i, user: `user-${i % 113}`, score: (i * 7919) % 10007, tags: ['alpha', 'beta'], active: i % 2 === 0 })
    items.push(s)
    n += s.length + 1
  }
  return ('[' + items.join(',') + ']').slice(0, size)
}

async function load (port: number, size: number, seconds: number, clients: number): Promise<number> {
  const message = payload(size)
  const sockets = await Promise.all(Array.from({ length: clients }, () => new Promise<WsClient>((resolve, reject) => {
    const ws = new WsClient(`ws://127.0.0.1:${port}/bench`, { perMessageDeflate: DEFLATE })
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })))
  let echoes = 0
  let running = true
  for (const ws of sockets) {
    ws.on('message', () => { echoes++; if (running) ws.send(message) })
    for (let i = 0; i < 4; i++) ws.send(message)
  }
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  running = false
  await Promise.all(sockets.map((ws) => new Promise((resolve) => { ws.once('close', resolve); ws.close() })))
  return echoes
}

async function main (): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5)
  const clients = Number(process.argv[3] ?? 50)
  const self = fileURLToPath(import.meta.url)
  const rows: string[] = []
  // BENCH_SIZES=1024,16384 / BENCH_KINDS=ws / BENCH_SERVER_ARGS='--cpu-prof' narrow or profile a run
  const sizes = (process.env.BENCH_SIZES ?? '1024,16384').split(',').map(Number)
  const kinds = (process.env.BENCH_KINDS ?? 'fastify-rfc6455,ws').split(',') as Kind[]
  const serverArgs = (process.env.BENCH_SERVER_ARGS ?? '').split(' ').filter((a) => a !== '')
  for (const size of sizes) {
    for (const kind of kinds) {
      const child = fork(self, ['serve', kind], { execArgv: ['--import', 'tsx', ...serverArgs] })
      const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })))
      await load(port, size, 1, 10) // warm up
      await request(child, 'reset')
      const echoes = await load(port, size, seconds, clients)
      const stats = await request<Stats>(child, 'stats')
      child.send('exit')
      rows.push(`${kind.padEnd(16)} ${String(size).padStart(6)} B  ${String(Math.round(echoes / seconds)).padStart(7)} echoes/s  ` +
        `${(stats.cpuMicros / Math.max(stats.echoes, 1)).toFixed(1).padStart(6)} µs server CPU/echo  rss ${(stats.rss / 1048576).toFixed(0)} MiB`)
      console.log(rows[rows.length - 1])
    }
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Kind)
else await main()
