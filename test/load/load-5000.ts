// Bounded load test (issue 5), run on demand, not part of `npm test`:
//
//   ulimit -n 20000   # 5,000 sockets on each side
//   node --expose-gc --import tsx test/load/load-5000.ts [connections=5000]
//
// The server runs in this process; the clients run in a child process (this same file with
// the argument `client`) so the server's RSS and handles are measured alone. Each client opens
// a WebSocket; once all are open at the same time, each exchanges messages of random sizes and
// then either closes cleanly or disconnects abruptly (destroy / reset) at a random moment,
// mid-message for some. Afterwards: no connection, handle, timer or listener remains, and RSS
// returns near its baseline. Prints a JSON report; exits 1 if a check fails.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { clock } from '../../lib/connection/heartbeat.js'

const N = process.argv[2] === 'client' ? 0 : Number(process.argv[2] ?? 5000)
const ROUNDS = Number(process.env.LOAD_ROUNDS ?? 2)
const MB = (n: number): number => Math.round(n / 1024 / 1024 * 10) / 10

function gc (): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) { g(); g() }
}

// ------------------------------------------------------------------------------------ client
function maskedFrame (opcode: number, payload: Buffer): Buffer {
  const len = payload.length
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + ext + 4)
  head[0] = 0x80 | opcode
  head[1] = 0x80 | (ext === 0 ? len : ext === 2 ? 126 : 127)
  if (ext === 2) head.writeUInt16BE(len, 2)
  else if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2)
  // mask 0: the payload goes as is (still a masked frame for the server)
  return Buffer.concat([head, payload])
}

async function client (port: number, n: number): Promise<void> {
  const request = 'GET /load HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
  const sockets: net.Socket[] = []
  let next = 0
  const open = async (): Promise<void> => {
    while (next < n) {
      next++
      const socket = net.connect({ host: '127.0.0.1', port })
      socket.on('error', () => {})
      await once(socket, 'connect')
      socket.write(request)
      let head = Buffer.alloc(0)
      while (head.indexOf('\r\n\r\n') < 0) {
        const [chunk] = await once(socket, 'data') as [Buffer]
        head = Buffer.concat([head, chunk])
      }
      if (!head.toString('latin1').startsWith('HTTP/1.1 101')) throw new Error('no 101: ' + head.toString('latin1', 0, 40))
      sockets.push(socket)
    }
  }
  await Promise.all(Array.from({ length: 100 }, open))
  process.send!({ type: 'open', count: sockets.length })
  await once(process, 'message')

  let abrupt = 0
  let clean = 0
  await Promise.all(sockets.map(async (socket, i) => {
    const messages = 1 + Math.floor(Math.random() * 20)
    const dieAt = Math.random() < 0.3 ? Math.floor(Math.random() * messages) : -1
    let received = 0
    socket.on('data', (chunk: Buffer) => { received += chunk.length })
    for (let m = 0; m < messages; m++) {
      const size = Math.random() < 0.05 ? 60_000 : Math.floor(Math.random() * 2000)
      const frame = maskedFrame(m % 2 === 0 ? 0x2 : 0x1, Buffer.alloc(size, 0x61))
      if (m === dieAt) {
        // abrupt: half a frame, then reset or destroy
        socket.write(frame.subarray(0, frame.length >> 1))
        if (i % 2 === 0) socket.resetAndDestroy(); else socket.destroy()
        abrupt++
        return
      }
      if (!socket.write(frame)) await once(socket, 'drain')
      if (Math.random() < 0.1) await new Promise((resolve) => setImmediate(resolve))
    }
    socket.write(maskedFrame(0x8, Buffer.from([0x03, 0xe8])))
    await once(socket, 'close')
    clean++
    void received
  }))
  process.send!({ type: 'done', abrupt, clean })
}

// ------------------------------------------------------------------------------------ server
async function main (): Promise<void> {
  const app = Fastify({ logger: { level: 'warn' } })
  await app.register(websocket, { closeTimeout: 2000 })
  let opened = 0
  let closed = 0
  app.ws('/load', (socket) => {
    opened++
    socket.on('message', (data: Buffer, binary: boolean) => { socket.send(binary ? data : data.toString()) })
    socket.on('close', () => { closed++ })
  })
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 4096 })
  const { port } = app.server.address() as net.AddressInfo

  gc()
  const baseline = process.memoryUsage()
  const handlesBefore = process.getActiveResourcesInfo()
  const upgradeListeners = app.server.listenerCount('upgrade')
  const rounds: Array<Record<string, unknown>> = []
  let atOpen = { connections: 0, watched: 0 }
  let after = baseline
  let handlesAfter: string[] = []
  // several rounds: if RSS after round 2 is no higher than after round 1, nothing accumulates
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = Date.now()
    const child = fork(new URL(import.meta.url).pathname, ['client', String(port), String(N)], {
      execArgv: ['--import', 'tsx'],
      stdio: 'inherit'
    })
    const [openMsg] = await once(child, 'message') as [{ count: number }]
    gc()
    const open = process.memoryUsage()
    atOpen = { connections: app.websocketConnections.size, watched: clock.size }
    let peakRss = open.rss
    const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 50)
    child.send({ type: 'go' })
    const [doneMsg] = await once(child, 'message') as [{ abrupt: number, clean: number }]
    await once(child, 'exit')
    // wait (bounded) for the server to see every close
    const deadline = Date.now() + 10_000
    while (app.websocketConnections.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    clearInterval(sampler)
    const ms = Date.now() - t0
    await new Promise((resolve) => setTimeout(resolve, 2000))
    gc()
    after = process.memoryUsage()
    handlesAfter = process.getActiveResourcesInfo()
    rounds.push({
      openAtOnce: atOpen.connections,
      clientReportedOpen: openMsg.count,
      abrupt: doneMsg.abrupt,
      clean: doneMsg.clean,
      ms,
      watchedAtOpen: atOpen.watched,
      registryAfter: app.websocketConnections.size,
      rssMB: { allOpen: MB(open.rss), peak: MB(peakRss), after: MB(after.rss) },
      heapUsedMB: { allOpen: MB(open.heapUsed), after: MB(after.heapUsed) },
      externalMB: { after: MB(after.external + after.arrayBuffers) }
    })
    if (atOpen.connections !== N) break
  }
  await app.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  gc()
  const handlesClosed = process.getActiveResourcesInfo()
  // RSS again after the allocator had a few seconds to hand pages back
  await new Promise((resolve) => setTimeout(resolve, 3000))
  gc()
  const settled = process.memoryUsage()

  const report = {
    connections: N,
    rounds,
    opened,
    closedEvents: closed,
    baseline: { rssMB: MB(baseline.rss), heapUsedMB: MB(baseline.heapUsed), externalMB: MB(baseline.external + baseline.arrayBuffers) },
    settledAfterAppClose: { rssMB: MB(settled.rss), heapUsedMB: MB(settled.heapUsed), externalMB: MB(settled.external + settled.arrayBuffers) },
    heartbeat: { timersCreatedTotal: clock.timersCreated, watchedAfter: clock.size, runningAfter: clock.running },
    handles: { before: handlesBefore, afterTraffic: handlesAfter, afterAppClose: handlesClosed },
    upgradeListeners: { before: upgradeListeners, afterAppClose: app.server.listenerCount('upgrade') },
    registryAfter: app.websocketConnections.size
  }
  const failures: string[] = []
  if (atOpen.connections !== N) failures.push(`only ${atOpen.connections} open at once`)
  if (closed !== opened) failures.push(`${opened} opened but ${closed} 'close' events`)
  if (app.websocketConnections.size !== 0) failures.push('connections left in the registry')
  if (clock.size !== 0 || clock.running) failures.push('the heartbeat clock still runs')
  if (handlesAfter.filter((h) => h !== 'TCPServerWrap').length > handlesBefore.filter((h) => h !== 'TCPServerWrap').length) failures.push('handles left after traffic')
  if (handlesClosed.some((h) => h === 'TCPSocketWrap' || h === 'TCPServerWrap' || h === 'Timeout')) failures.push('handles left after app.close()')
  if (app.server.listenerCount('upgrade') !== 0) failures.push("'upgrade' listener left after close")
  if (after.heapUsed > baseline.heapUsed + 20 * 1024 * 1024) failures.push('heap did not return near baseline')
  console.log(JSON.stringify({ ...report, failures }, null, 2))
  process.exitCode = failures.length === 0 ? 0 : 1
}

if (process.argv[2] === 'client') {
  client(Number(process.argv[3]), Number(process.argv[4])).catch((err) => { console.error(err); process.exit(1) })
} else {
  main().catch((err) => { console.error(err); process.exit(1) })
}
