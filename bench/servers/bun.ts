/**
 * The Bun reference server: `bun bench/servers/bun.ts`, spawned by bench/harness.ts with the
 * binary of the `@oven/bun-linux-x64` devDependency. `Bun.serve` with its built-in WebSocket
 * (uWebSockets, C++) echoes each message back with its type, and answers the same IPC commands
 * as bench/servers/main.ts (Bun speaks Node's IPC channel). Connections opened on `/topic`
 * subscribe to the topic `bench`; `burst` publishes to it with `server.publish()` (Bun's fastest
 * fan-out), `broadcast` loops over `send()`.
 */
import type { ServerReply, ServerRequest } from '../protocol.js'

interface BunSocket {
  send: (data: string | Uint8Array) => number
  subscribe: (topic: string) => void
}
interface BunServer {
  port: number
  upgrade: (req: Request, options: { data: { topic: boolean } }) => boolean
  publish: (topic: string, data: Uint8Array) => number
}
interface BunGlobal {
  serve: (options: unknown) => BunServer
  gc: (force: boolean) => void
  writeHeapSnapshot?: () => unknown
}
declare const Bun: BunGlobal

const MAX_PAYLOAD = 64 * 1024 * 1024
const sockets = new Set<BunSocket>()

// --ballast (BENCH_BALLAST_MIB): the same long-lived objects as the Node servers keep
const ballastMiB = Number(process.env.BENCH_BALLAST_MIB ?? 0)
const ballast: Array<{ a: number, b: number, c: null, d: null }> = []
for (let i = 0; i < ballastMiB * 16384; i++) ballast.push({ a: i, b: i + 1, c: null, d: null })
;(globalThis as { benchBallast?: unknown }).benchBallast = ballast

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch (req: Request, srv: BunServer) {
    const topic = new URL(req.url).pathname === '/topic'
    if (srv.upgrade(req, { data: { topic } })) return undefined
    return new Response('WebSocket only', { status: 426 })
  },
  websocket: {
    maxPayloadLength: MAX_PAYLOAD,
    idleTimeout: 0,
    // no per-message compression, as for every other server of the bench
    perMessageDeflate: false,
    open (ws: BunSocket & { data: { topic: boolean } }) {
      sockets.add(ws)
      if (ws.data.topic) ws.subscribe('bench')
    },
    message (ws: BunSocket, message: string | Uint8Array) {
      ws.send(message)
    },
    close (ws: BunSocket) {
      sockets.delete(ws)
    }
  }
})

function memory (): Pick<ServerReply, 'rss' | 'heapUsed' | 'external' | 'time'> {
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + (m.arrayBuffers ?? 0), time: Number(process.hrtime.bigint()) / 1e9 }
}
function reply (message: ServerReply): void {
  process.send?.(message)
}
function stats (id: number): ServerReply {
  return { id, cpu: process.cpuUsage(), connections: sockets.size, ...memory() }
}

process.on('message', (request: ServerRequest) => {
  const { id } = request
  switch (request.cmd) {
    case 'stats':
      reply(stats(id))
      break
    case 'gc':
      Bun.gc(true)
      setTimeout(() => { Bun.gc(true); reply(stats(id)) }, 50)
      break
    case 'snapshot':
      // heap snapshots are the Node servers' tool; answer so a run with --heap-snapshot goes on
      reply(stats(id))
      break
    case 'broadcast': {
      const data = new Uint8Array(request.size ?? 64).fill(0x61)
      let left = request.count ?? 1
      const next = (): void => {
        for (const ws of sockets) ws.send(data)
        if (--left > 0) setImmediate(next)
        else reply(stats(id))
      }
      next()
      break
    }
    case 'burst': {
      const data = new Uint8Array(request.size ?? 64).fill(0x61)
      const count = request.count ?? 1
      for (let i = 0; i < count; i++) server.publish('bench', data)
      reply(stats(id))
      break
    }
  }
})
process.on('disconnect', () => process.exit(0))
reply({ ...stats(0), port: server.port })
