/**
 * WebSockets over HTTP/2 (RFC 8441) against WebSockets over HTTP/1.1 TLS, in one run, on one
 * server: an `http2: true` + `allowHTTP1` app in a child process with an echo route.
 *
 *   node --import tsx bench/http2.ts [seconds=3] [clients=50] [multiplexed=1000]
 *
 * 1. Echo: `clients` WebSockets, each keeping 4 messages in flight, for `seconds` per message
 *    size; once as `clients` TLS connections with an HTTP/1.1 Upgrade each, once as `clients`
 *    extended CONNECT streams on ONE HTTP/2 connection. Echoes per second, the server's CPU time
 *    per echo, and the ratio h2 / HTTP/1.1.
 * 2. Multiplexed: `multiplexed` WebSockets opened on one HTTP/2 connection: time to open them
 *    all, the server's heap growth with them open (after a GC), then one echo on every one.
 *
 * Both sides use the same minimal client (masked frames, a frame counter), so the comparison is
 * the transport's. The client shares the machine with the server: compare rows of one run.
 */
import { fork } from 'node:child_process'
import { once } from 'node:events'
import http2 from 'node:http2'
import type { Duplex } from 'node:stream'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'

interface Stats { cpuMicros: number, heapUsed: number }

async function serve (): Promise<void> {
  const { default: Fastify } = await import('fastify')
  const { default: websocket } = await import('../lib/index.js')
  const { selfSignedCertificate } = await import('../examples/http2.js')
  const app = Fastify({ http2: true, https: { allowHTTP1: true, ...selfSignedCertificate() } })
  await app.register(websocket, { maxConnections: Infinity })
  app.ws('/echo', (socket) => {
    socket.on('message', (data, isBinary) => { socket.send(isBinary ? data : data.toString('utf8')) })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  process.on('message', () => {
    const usage = process.cpuUsage()
    ;(globalThis as { gc?: () => void }).gc?.()
    process.send!({ cpuMicros: usage.user + usage.system, heapUsed: process.memoryUsage().heapUsed } satisfies Stats)
  })
  process.send!({ port: (app.server.address() as { port: number }).port })
}

/** A masked binary frame (RFC 6455 §5.2) with an all-zero mask: the payload stays as is. */
function frame (size: number): Buffer {
  const extra = size < 126 ? 0 : size < 65536 ? 2 : 8
  const out = Buffer.alloc(2 + extra + 4 + size, 0x61)
  out[0] = 0x82
  out[1] = 0x80 | (extra === 0 ? size : extra === 2 ? 126 : 127)
  if (extra === 2) out.writeUInt16BE(size, 2)
  if (extra === 8) out.writeBigUInt64BE(BigInt(size), 2)
  out.fill(0, 2 + extra, 6 + extra)
  return out
}

/** Counts whole server frames in a byte stream (server frames are unmasked). */
function frameCounter (onFrame: () => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0)
  return (chunk) => {
    let b = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    let o = 0
    while (b.length - o >= 2) {
      let length = b[o + 1] & 0x7f
      let header = 2
      if (length === 126) { if (b.length - o < 4) break; length = b.readUInt16BE(o + 2); header = 4 }
      else if (length === 127) { if (b.length - o < 10) break; length = Number(b.readBigUInt64BE(o + 2)); header = 10 }
      if (b.length - o < header + length) break
      o += header + length
      onFrame()
    }
    b = b.subarray(o)
    pending = b.length === 0 ? Buffer.alloc(0) : Buffer.from(b)
  }
}

/** An HTTP/1.1 TLS connection upgraded to a WebSocket (RFC 6455 §4.1). */
async function openH1 (port: number): Promise<Duplex> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
  await once(socket, 'secureConnect')
  socket.setNoDelay(true)
  socket.write(`GET /echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  let head = ''
  while (!head.includes('\r\n\r\n')) head += ((await once(socket, 'data')) as [Buffer])[0].toString('latin1')
  if (!head.startsWith('HTTP/1.1 101') || !head.endsWith('\r\n\r\n')) throw new Error('upgrade failed')
  return socket
}

/** An extended CONNECT stream on `session` (RFC 8441 §5). */
async function openH2 (session: http2.ClientHttp2Session): Promise<Duplex> {
  const stream = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':scheme': 'https', ':path': '/echo', 'sec-websocket-version': '13' }, { endStream: false })
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
  if (Number(headers[':status']) !== 200) throw new Error(`CONNECT answered ${String(headers[':status'])}`)
  return stream
}

async function h2session (port: number): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false })
  await once(session, 'remoteSettings')
  return session
}

/** Every socket keeps `inFlight` echoes going for `ms`; returns the echoes completed. */
async function echoLoad (sockets: Duplex[], size: number, ms: number, inFlight = 4): Promise<number> {
  const payload = frame(size)
  let echoes = 0
  let running = true
  for (const socket of sockets) {
    socket.on('error', () => {})
    socket.on('data', frameCounter(() => { echoes++; if (running) socket.write(payload) }))
    for (let i = 0; i < inFlight; i++) socket.write(payload)
  }
  await new Promise((resolve) => setTimeout(resolve, ms))
  running = false
  return echoes
}

async function main (): Promise<void> {
  const seconds = Number(process.argv[2] ?? 3)
  const clients = Number(process.argv[3] ?? 50)
  const multiplexed = Number(process.argv[4] ?? 1000)
  const child = fork(fileURLToPath(import.meta.url), ['serve'], { execArgv: ['--import', 'tsx', '--expose-gc'] })
  const [{ port }] = await once(child, 'message') as [{ port: number }]
  const stats = async (): Promise<Stats> => { child.send('stats'); return ((await once(child, 'message')) as [Stats])[0] }

  console.log(`## WebSocket echo over HTTP/2 vs HTTP/1.1 (TLS), ${clients} WebSockets, 4 in flight each, ${seconds} s per row\n`)
  console.log('| size | HTTP/1.1 echoes/s | h2 echoes/s | h2 / HTTP/1.1 | server CPU µs/echo HTTP/1.1 | h2 |')
  console.log('|---:|---:|---:|---:|---:|---:|')
  for (const size of [64, 1024, 16384]) {
    const h1Sockets = await Promise.all(Array.from({ length: clients }, () => openH1(port)))
    const b1 = await stats()
    const h1 = await echoLoad(h1Sockets, size, seconds * 1000)
    const a1 = await stats()
    for (const s of h1Sockets) s.destroy()
    const session = await h2session(port)
    const h2Streams = await Promise.all(Array.from({ length: clients }, () => openH2(session)))
    const b2 = await stats()
    const h2 = await echoLoad(h2Streams, size, seconds * 1000)
    const a2 = await stats()
    session.destroy()
    const rate = (n: number): string => Math.round(n / seconds).toLocaleString('en')
    const cpu = (a: Stats, b: Stats, n: number): string => ((a.cpuMicros - b.cpuMicros) / n).toFixed(1)
    console.log(`| ${size} B | ${rate(h1)} | ${rate(h2)} | ${(h2 / h1).toFixed(2)} | ${cpu(a1, b1, h1)} | ${cpu(a2, b2, h2)} |`)
  }

  console.log(`\n## ${multiplexed} WebSockets multiplexed on one HTTP/2 connection\n`)
  const before = await stats()
  const session = await h2session(port)
  const start = performance.now()
  const streams = await Promise.all(Array.from({ length: multiplexed }, () => openH2(session)))
  const opened = performance.now() - start
  const open = await stats()
  const roundStart = performance.now()
  await Promise.all(streams.map(async (stream) => {
    const echoed = new Promise<void>((resolve) => { stream.on('data', frameCounter(resolve)) })
    stream.write(frame(64))
    await echoed
  }))
  const round = performance.now() - roundStart
  console.log('| opened in | server heap growth (after GC) | per WebSocket | one 64 B echo on each |')
  console.log('|---:|---:|---:|---:|')
  console.log(`| ${opened.toFixed(0)} ms | ${((open.heapUsed - before.heapUsed) / 1048576).toFixed(1)} MiB | ${((open.heapUsed - before.heapUsed) / multiplexed / 1024).toFixed(1)} KiB | ${round.toFixed(0)} ms |`)
  session.destroy()
  child.kill()
}

if (process.argv[2] === 'serve') await serve()
else await main()
