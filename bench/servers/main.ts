/**
 * One benchmark server per process: `node --expose-gc --import tsx bench/servers/main.ts <kind>`.
 * Every kind echoes each message back with its type (text stays text, binary stays binary) on any
 * path, runs upgrades through its normal stack, and answers the parent's IPC commands:
 *   stats      -> cpu time, memory, open connections
 *   gc         -> forced GC (twice), then memory
 *   broadcast  -> send `count` binary messages of `size` bytes to every open connection
 *   burst      -> the same, all `count` in one synchronous loop (one tick); the plugin publishes
 *                 to a topic that every connection opened on `/topic` is subscribed to
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import { writeHeapSnapshot } from 'node:v8'
import type { Duplex } from 'node:stream'
import type { ServerKind, ServerReply, ServerRequest } from '../protocol.js'

interface BenchServer {
  port: number
  connections: () => number
  broadcast: (data: Buffer) => void
  /** `count` messages to every connection in one tick (default: `count` broadcasts in a loop) */
  burst?: (data: Buffer, count: number) => void
}

const MAX_PAYLOAD = 64 * 1024 * 1024

// tsx turns source maps on; every socket error (a client's reset) would then map its stack
// through them, a cost of the bench harness that no server has in production
process.setSourceMapsEnabled(false)

/** Upgrades go through Fastify's router and an onRequest hook, like a real app's auth check. */
function onRequestHook (request: { headers: Record<string, unknown> }, _reply: unknown, done: (err?: Error) => void): void {
  if (request.headers['x-deny'] !== undefined) done(new Error('denied'))
  else done()
}

async function startOurs (options: { lentMessages?: boolean } = {}): Promise<BenchServer> {
  const { default: Fastify } = await import('fastify')
  // BENCH_LIB: another copy of lib/ (e.g. a snapshot before a change) for a side-by-side run
  const libEntry = process.env.BENCH_LIB ?? '../../lib/index.js'
  const lib = await import(libEntry) as typeof import('../../lib/index.js')
  const websocket = lib.default
  const app = Fastify({ logger: false })
  // ours-lent: large binary messages lent (valid until the listener returns): the echo's send()
  // holds the slab until its write completes
  await app.register(websocket, { maxPayload: MAX_PAYLOAD, ...options })
  app.addHook('onRequest', onRequestHook)
  app.ws('/*', (socket, request) => {
    // bench/topics.ts: connections on /topic subscribe to one topic (a lib/ from before topics has no subscribe)
    if (request.url === '/topic' && typeof socket.subscribe === 'function') socket.subscribe('bench')
    socket.on('message', (data, isBinary) => {
      socket.send(isBinary ? data : data.toString('utf8'))
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as net.AddressInfo
  const connections = app.websocketConnections
  // broadcast(): framed once, the same bytes written to every socket (a copy of lib/ from before
  // the API existed falls back to a send() loop)
  const broadcast = (lib as { broadcast?: (sockets: Iterable<unknown>, data: Buffer) => number }).broadcast
  const publish = (app as { publish?: (topic: string, data: Buffer) => number }).publish
  return {
    port: address.port,
    connections: () => connections.size,
    broadcast: typeof broadcast === 'function'
      ? (data) => { broadcast(connections, data) }
      : (data) => { for (const ws of connections) ws.send(data) },
    burst: typeof publish === 'function'
      ? (data, count) => { for (let i = 0; i < count; i++) publish.call(app, 'bench', data) }
      : undefined
  }
}

/**
 * The plugin's WebSocket class on a plain Node http server's 'upgrade' event, no Fastify (like a
 * standalone ws server; not in the default set: --servers=ours-bare).
 */
async function startOursBare (): Promise<BenchServer> {
  const libEntry = process.env.BENCH_LIB ?? '../../lib/index.js'
  const { WebSocket } = await import(libEntry) as typeof import('../../lib/index.js')
  const http = await import('node:http')
  const sockets = new Set<InstanceType<typeof WebSocket>>()
  const server = http.createServer()
  server.on('upgrade', (req, socket: net.Socket, head: Buffer) => {
    const accept = createHash('sha1').update(String(req.headers['sec-websocket-key']) + GUID).digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
    const ws = new WebSocket(socket, { maxPayload: MAX_PAYLOAD })
    sockets.add(ws)
    ws.on('close', () => sockets.delete(ws))
    ws.on('message', (data, isBinary) => { ws.send(isBinary ? data : data.toString('utf8')) })
    ws.receive(head)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => sockets.size,
    broadcast: (data) => { for (const ws of sockets) ws.send(data) }
  }
}

async function startWs (): Promise<BenchServer> {
  const { WebSocketServer } = await import('ws')
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: MAX_PAYLOAD })
  await new Promise<void>((resolve) => wss.once('listening', resolve))
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => { ws.send(data as Buffer, { binary: isBinary }) })
  })
  return {
    port: (wss.address() as net.AddressInfo).port,
    connections: () => wss.clients.size,
    broadcast: (data) => { for (const ws of wss.clients) ws.send(data) }
  }
}

async function startFastifyWebsocket (): Promise<BenchServer> {
  const { default: Fastify } = await import('fastify')
  const { default: websocket } = await import('@fastify/websocket')
  const app = Fastify({ logger: false })
  await app.register(websocket, { options: { maxPayload: MAX_PAYLOAD } })
  app.addHook('onRequest', onRequestHook)
  await app.register(async (scope) => {
    scope.get('/*', { websocket: true }, (socket) => {
      socket.on('message', (data, isBinary) => { socket.send(data as Buffer, { binary: isBinary }) })
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const clients = app.websocketServer.clients
  return {
    port: (app.server.address() as net.AddressInfo).port,
    connections: () => clients.size,
    broadcast: (data) => { for (const ws of clients) ws.send(data) }
  }
}

// ---- raw TCP ceiling: answers the handshake, then walks frame headers and echoes every frame
// back unmasked (mask bit and key dropped, payload bytes forwarded as they are, never XORed) ----

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

class RawEcho {
  private readonly socket: net.Socket
  private handshakeDone = false
  private head: Buffer | null = null
  /** payload bytes of the current frame still to forward */
  private remaining = 0

  constructor (socket: net.Socket, private readonly sockets: Set<RawEcho>) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => { this.onData(chunk) })
    socket.on('error', () => { socket.destroy() })
    socket.on('close', () => { sockets.delete(this) })
  }

  write (data: Buffer): void {
    if (this.handshakeDone && !this.socket.destroyed) this.socket.write(data)
  }

  private onData (chunk: Buffer): void {
    if (this.head !== null) {
      chunk = Buffer.concat([this.head, chunk])
      this.head = null
    }
    let offset = 0
    if (!this.handshakeDone) {
      const end = chunk.indexOf('\r\n\r\n')
      if (end < 0) { this.head = chunk; return }
      const request = chunk.toString('latin1', 0, end)
      const match = /sec-websocket-key:\s*(\S+)/i.exec(request)
      if (match === null) { this.socket.destroy(); return }
      const accept = createHash('sha1').update(match[1] + GUID).digest('base64')
      this.socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      this.handshakeDone = true
      this.sockets.add(this)
      offset = end + 4
    }
    const out: Buffer[] = []
    const small = Buffer.allocUnsafe(chunk.length)
    let smallStart = 0
    let smallEnd = 0
    const flushSmall = (): void => {
      if (smallEnd > smallStart) out.push(small.subarray(smallStart, smallEnd))
      smallStart = smallEnd
    }
    const end = chunk.length
    while (offset < end) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, end - offset)
        flushSmall()
        out.push(chunk.subarray(offset, offset + n))
        offset += n
        this.remaining -= n
        continue
      }
      if (end - offset < 2) break
      const b1 = chunk[offset + 1]
      let len = b1 & 0x7f
      let size = 2
      if (len === 126) size = 4
      else if (len === 127) size = 10
      const masked = (b1 & 0x80) !== 0
      const full = size + (masked ? 4 : 0)
      if (end - offset < full) break
      if (len === 126) len = chunk.readUInt16BE(offset + 2)
      else if (len === 127) len = chunk.readUInt32BE(offset + 2) * 0x100000000 + chunk.readUInt32BE(offset + 6)
      small[smallEnd++] = chunk[offset]
      small[smallEnd++] = b1 & 0x7f
      for (let i = 2; i < size; i++) small[smallEnd++] = chunk[offset + i]
      offset += full
      const n = Math.min(len, end - offset)
      if (n <= 1024) {
        chunk.copy(small, smallEnd, offset, offset + n)
        smallEnd += n
      } else {
        flushSmall()
        out.push(chunk.subarray(offset, offset + n))
      }
      offset += n
      this.remaining = len - n
    }
    flushSmall()
    if (offset < end) this.head = Buffer.from(chunk.subarray(offset))
    if (out.length === 1) this.socket.write(out[0])
    else if (out.length > 1) {
      this.socket.cork()
      for (const piece of out) this.socket.write(piece)
      this.socket.uncork()
    }
  }
}

async function startRaw (): Promise<BenchServer> {
  const sockets = new Set<RawEcho>()
  const server = net.createServer((socket) => { void new RawEcho(socket, sockets) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => sockets.size,
    broadcast: (data) => {
      const header = Buffer.from([0x82, data.length])
      const frame = Buffer.concat([header, data])
      for (const s of sockets) s.write(frame)
    }
  }
}

const starters: Record<ServerKind, () => Promise<BenchServer>> = {
  ours: () => startOurs(),
  'ours-base': () => startOurs(),
  'ours-lent': () => startOurs({ lentMessages: true }),
  'ours-bare': startOursBare,
  ws: startWs,
  'ws-nobu': startWs,
  'fastify-websocket': startFastifyWebsocket,
  raw: startRaw,
  bun: () => { throw new Error('the bun server runs bench/servers/bun.ts under Bun') }
}

const kind = process.argv[2] as ServerKind
// --ballast=MiB (BENCH_BALLAST_MIB): long-lived JS objects kept for the life of the process, so
// every server runs with a real app's old-generation size (V8 sizes its GC limits from it)
const ballastMiB = Number(process.env.BENCH_BALLAST_MIB ?? 0)
const ballast: Array<{ a: number, b: number, c: null, d: null }> = []
for (let i = 0; i < ballastMiB * 16384; i++) ballast.push({ a: i, b: i + 1, c: null, d: null })
;(globalThis as { benchBallast?: unknown }).benchBallast = ballast
const start = starters[kind]
if (start === undefined) throw new Error(`unknown server kind ${kind}`)
const server = await start()

function reply (message: ServerReply): void {
  process.send?.(message)
}

function memory (): Pick<ServerReply, 'rss' | 'heapUsed' | 'external' | 'time'> {
  const m = process.memoryUsage()
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers, time: Number(process.hrtime.bigint()) / 1e9 }
}

process.on('message', (request: ServerRequest) => {
  const { id } = request
  switch (request.cmd) {
    case 'stats':
      reply({ id, cpu: process.cpuUsage(), connections: server.connections(), ...memory() })
      break
    case 'gc': {
      const gc = (globalThis as { gc?: () => void }).gc
      if (gc !== undefined) { gc(); gc() }
      // let finalizers and freed sockets settle, then measure
      setTimeout(() => {
        if (gc !== undefined) gc()
        reply({ id, cpu: process.cpuUsage(), connections: server.connections(), ...memory() })
      }, 50)
      break
    }
    case 'snapshot':
      writeHeapSnapshot(request.path)
      reply({ id, cpu: process.cpuUsage(), connections: server.connections(), ...memory() })
      break
    case 'broadcast': {
      // one message per event-loop turn, as when each broadcast answers its own incoming event
      // (a burst sent in one synchronous loop would let a server coalesce writes per socket)
      const data = Buffer.alloc(request.size ?? 64, 0x61)
      let left = request.count ?? 1
      const next = (): void => {
        server.broadcast(data)
        if (--left > 0) setImmediate(next)
        else reply({ id, cpu: process.cpuUsage(), connections: server.connections(), ...memory() })
      }
      next()
      break
    }
    case 'burst': {
      const data = Buffer.alloc(request.size ?? 64, 0x61)
      const count = request.count ?? 1
      if (server.burst !== undefined) server.burst(data, count)
      else for (let i = 0; i < count; i++) server.broadcast(data)
      reply({ id, cpu: process.cpuUsage(), connections: server.connections(), ...memory() })
      break
    }
  }
})
process.on('disconnect', () => process.exit(0))
reply({ id: 0, port: server.port, cpu: process.cpuUsage(), connections: 0, ...memory() })
