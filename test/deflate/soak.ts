// permessage-deflate memory, a script run on demand (not part of `npm test`):
//
//   node --expose-gc --import tsx test/deflate/soak.ts [connections=10000] [held=1000] [lean]
//
// `lean` measures part 1 with 10-bit windows and memLevel 4 instead of the defaults.
//
// 1. Per-connection cost: `held` raw-byte clients each send one compressed message and get a
//    compressed echo (so the server holds an inflater and a deflater, context takeover on), and
//    stay open; memory is compared with the same run without the extension.
// 2. Open/close soak: `connections` compressed connections with the `ws` client, 100 at a time,
//    each exchanging a compressed message, then closed cleanly, terminated, or terminated in the
//    middle of a compressed message; memory after a GC is compared with the start.
import { WebSocket as WsClient } from 'ws'
import { liveZlibStreams } from '../../lib/connection/deflate.js'
import { frame, pmdCompress, rawConnect, type RawClient, startServer } from './helpers.js'

const total = Number(process.argv[2] ?? 10_000)
const held = Number(process.argv[3] ?? 1000)
const lean = process.argv[4] === 'lean'
const heldOptions = lean ? { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 10, memLevel: 4 } : { threshold: 0 }
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')

async function settle (): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 6; i++) {
    gc!()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return process.memoryUsage()
}
const mb = (n: number): string => (n / 1048576).toFixed(1) + ' MiB'
const kb = (n: number): string => (n / 1024).toFixed(1) + ' KiB'

const json = JSON.stringify(Array.from({ length: 60 }, (_, i) => ({ id: i, name: `user-${i}`, ok: i % 2 === 0 })))

async function perConnection (deflate: boolean): Promise<{ rss: number, external: number, heap: number }> {
  const srv = await startServer(deflate ? { perMessageDeflate: heldOptions } : {})
  const before = await settle()
  const clients: RawClient[] = []
  for (let b = 0; b < held; b += 100) {
    await Promise.all(Array.from({ length: Math.min(100, held - b) }, async () => {
      const c = await rawConnect(srv.port, '/echo', deflate ? 'permessage-deflate; client_max_window_bits' : undefined)
      c.send(deflate ? frame(0x1, pmdCompress(json, { windowBits: lean ? 10 : 15 }), { rsv1: true }) : frame(0x1, json))
      await c.frame(0)
      c.frames = []
      clients.push(c)
    }))
  }
  const after = await settle()
  const streams = liveZlibStreams()
  for (const c of clients) c.socket.destroy()
  await srv.app.close()
  console.log(`  ${deflate ? 'deflate' : 'plain  '}: ${held} open connections, zlib streams ${streams}, rss +${mb(after.rss - before.rss)}, external +${mb(after.external - before.external)}, heap +${mb(after.heapUsed - before.heapUsed)}`)
  return { rss: (after.rss - before.rss) / held, external: (after.external - before.external) / held, heap: (after.heapUsed - before.heapUsed) / held }
}

async function soak (): Promise<void> {
  // a route that keeps no reference to its sockets (the helpers' /echo keeps them for tests)
  const srv = await startServer({ perMessageDeflate: { threshold: 0 } }, (app) => app.ws('/soak', (socket) => {
    socket.on('message', (data: Buffer, binary: boolean) => { socket.send(binary ? data : data.toString()) })
  }))
  const one = async (i: number): Promise<void> => {
    const client = new WsClient(`ws://127.0.0.1:${srv.port}/soak`, { perMessageDeflate: { threshold: 0 } })
    client.on('error', () => {})
    await new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) })
    const closed = new Promise((resolve) => client.once('close', resolve))
    const echo = new Promise((resolve) => client.once('message', resolve))
    client.send(json)
    await echo
    if (i % 3 === 0) client.close(1000)
    else if (i % 3 === 1) client.terminate()
    else { client.send(json, { fin: false }); client.terminate() }
    await closed
  }
  // warm up (JIT, pools, zlib's first allocations), then measure from there
  for (let i = 0; i < 500; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => one(i + k)))
  while (srv.app.websocketConnections.size > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  const start = await settle()
  const t0 = Date.now()
  for (let i = 0; i < total; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, total - i) }, (_, k) => one(i + k)))
  }
  while (srv.app.websocketConnections.size > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  const end = await settle()
  console.log(`  ${total} compressed connections opened and closed in ${((Date.now() - t0) / 1000).toFixed(1)} s; zlib streams left: ${liveZlibStreams()}`)
  console.log(`  rss ${mb(start.rss)} -> ${mb(end.rss)} (${mb(end.rss - start.rss)}), heap ${mb(start.heapUsed)} -> ${mb(end.heapUsed)} (${mb(end.heapUsed - start.heapUsed)}), external ${mb(start.external)} -> ${mb(end.external)} (${mb(end.external - start.external)})`)
  await srv.app.close()
}

console.log(`per-connection memory (server side, raw clients, context takeover, ${lean ? '10-bit windows, memLevel 4' : '15-bit windows, memLevel 8'}):`)
const plain = await perConnection(false)
const withDeflate = await perConnection(true)
console.log(`  permessage-deflate costs ${kb(withDeflate.rss - plain.rss)} rss per active connection (${kb(withDeflate.external - plain.external)} external, ${kb(withDeflate.heap - plain.heap)} heap)`)
if (total > 0) {
  console.log('open/close soak:')
  await soak()
}
