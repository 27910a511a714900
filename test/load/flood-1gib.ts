// Inbound flow control under a flood (issue 5), run on demand, not part of `npm test`:
//
//   node --expose-gc --import tsx test/load/flood-1gib.ts [iterator|listener] [MiB=1024] [messageKiB=1024]
//
// A client in a child process writes MiB of binary messages as fast as TCP lets it at a handler
// that takes 10 ms per message (the async iterator, or an async 'message' listener). The server
// pauses reading while its queue is full, so its RSS stays bounded while the client is held back
// by TCP. Prints a JSON report with the server's RSS (sampled every 20 ms) and exits 1 if a
// message was lost or memory grew past 128 MiB over the baseline.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'

const MB = (n: number): number => Math.round(n / 1024 / 1024 * 10) / 10

async function client (port: number, path: string, totalMiB: number, messageKiB: number): Promise<void> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await once(socket, 'connect')
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  const [head] = await once(socket, 'data') as [Buffer]
  if (!head.toString('latin1').startsWith('HTTP/1.1 101')) throw new Error('no 101')
  const size = messageKiB * 1024
  const header = Buffer.alloc(size < 65536 ? 8 : 14)
  header[0] = 0x82
  if (size < 65536) { header[1] = 0x80 | 126; header.writeUInt16BE(size, 2) } else { header[1] = 0x80 | 127; header.writeBigUInt64BE(BigInt(size), 2) }
  // mask 0 (the last 4 header bytes): one payload buffer serves every message
  const payload = Buffer.alloc(size, 0x5a)
  const count = Math.floor(totalMiB * 1024 / messageKiB)
  const t0 = Date.now()
  let blocked = 0
  for (let i = 0; i < count; i++) {
    socket.write(header)
    if (!socket.write(payload)) { blocked++; await once(socket, 'drain') }
  }
  socket.write(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]))
  await once(socket, 'close')
  process.send!({ count, ms: Date.now() - t0, blocked })
}

async function main (mode: string, totalMiB: number, messageKiB: number): Promise<void> {
  const app = Fastify({ logger: { level: 'warn' } })
  await app.register(websocket, { maxPayload: Math.max(1024 * 1024, messageKiB * 1024), heartbeatInterval: 0 })
  let received = 0
  let bytes = 0
  let handlerDone!: () => void
  const done = new Promise<void>((resolve) => { handlerDone = resolve })
  app.ws('/iterator', async (socket) => {
    for await (const data of socket) {
      received++
      bytes += (data as Buffer).length
      await sleep(10)
    }
    handlerDone()
  })
  app.ws('/listener', (socket) => {
    socket.on('message', async (data: Buffer) => {
      received++
      bytes += data.length
      await sleep(10)
    })
    socket.on('close', () => handlerDone())
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as net.AddressInfo
  ;(globalThis as { gc?: () => void }).gc?.()
  const baseline = process.memoryUsage()
  let peakRss = baseline.rss
  let peakHeap = baseline.heapUsed
  let peakExternal = baseline.external + baseline.arrayBuffers
  const sampler = setInterval(() => {
    const m = process.memoryUsage()
    peakRss = Math.max(peakRss, m.rss)
    peakHeap = Math.max(peakHeap, m.heapUsed)
    peakExternal = Math.max(peakExternal, m.external + m.arrayBuffers)
  }, 20)
  const child = fork(new URL(import.meta.url).pathname, ['client', String(port), `/${mode}`, String(totalMiB), String(messageKiB)], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  const [result] = await once(child, 'message') as [{ count: number, ms: number, blocked: number }]
  // the handler may still be consuming what was queued when the client finished
  await Promise.race([done, sleep(30_000)])
  clearInterval(sampler)
  await app.close()
  const report = {
    mode,
    handlerMsPerMessage: 10,
    sentMiB: totalMiB,
    messageKiB,
    messages: result.count,
    received,
    receivedMiB: MB(bytes),
    seconds: result.ms / 1000,
    clientWritesBlocked: result.blocked,
    serverRssMB: { baseline: MB(baseline.rss), peak: MB(peakRss), growth: MB(peakRss - baseline.rss) },
    serverHeapUsedMB: { baseline: MB(baseline.heapUsed), peak: MB(peakHeap) },
    serverExternalMB: { baseline: MB(baseline.external + baseline.arrayBuffers), peak: MB(peakExternal) }
  }
  const failures: string[] = []
  if (received !== result.count) failures.push(`${result.count} sent, ${received} received`)
  if (peakRss - baseline.rss > 128 * 1024 * 1024) failures.push('RSS grew more than 128 MiB')
  console.log(JSON.stringify({ ...report, failures }, null, 2))
  process.exitCode = failures.length === 0 ? 0 : 1
}

if (process.argv[2] === 'client') {
  client(Number(process.argv[3]), process.argv[4], Number(process.argv[5]), Number(process.argv[6])).catch((err) => { console.error(err); process.exit(1) })
} else {
  const mode = process.argv[2] ?? 'iterator'
  if (mode !== 'iterator' && mode !== 'listener') throw new Error('mode: iterator | listener')
  main(mode, Number(process.argv[3] ?? 1024), Number(process.argv[4] ?? 1024)).catch((err) => { console.error(err); process.exit(1) })
}
