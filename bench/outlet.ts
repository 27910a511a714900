/**
 * The connection layer alone, no system calls: CPU ns per echoed 32 B text message through
 * WebSocket (read -> core -> 'message' -> send() -> the end-of-tick flush), 100 connections over a
 * transport that completes every write at once, 64 messages per read. Steadier than the socket
 * benchmarks on a shared machine; used to check the outlet (lib/connection/outlet.ts) costs the
 * echo path nothing.
 *
 *   npx tsx bench/outlet.ts [<dir with lib/index.js or lib/index.ts>] [--lent] [--size=B] [--binary]
 *   (default: this lib/, 32-byte text messages; --size and --binary change the echoed message)
 *
 * --lent: each read is handed over as the shared read buffer hands it (lent: the core copies each
 * message out, unmasking on the way), the path of TCP sockets; default: owned reads (other streams).
 *
 * Compare two builds: the bench's compiled copies (bench/results/build/current, .../base after
 * `npm run bench -- --base=<dir>`), alternating runs of each.
 */
import { resolve } from 'node:path'
import { Duplex } from 'node:stream'
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const lent = process.argv.includes('--lent')
const binary = process.argv.includes('--binary')
const size = Number(process.argv.find((a) => a.startsWith('--size='))?.slice(7) ?? 32)
const dir = resolve(positional[0] ?? new URL('..', import.meta.url).pathname)
const entry = existsSync(resolve(dir, 'lib/index.js')) ? resolve(dir, 'lib/index.js') : resolve(dir, 'lib/index.ts')
const { WebSocket } = await import(pathToFileURL(entry).href) as typeof import('../lib/index.js')

class NullTransport extends Duplex {
  writes = 0
  override _read (): void {}
  override _write (_chunk: Buffer, _encoding: string, cb: () => void): void { this.writes++; cb() }
  override _writev (_chunks: unknown[], cb: () => void): void { this.writes++; cb() }
}

/** A masked client frame (RFC 6455 §5.2, §5.3), text or binary, payload under 64 KiB. */
function clientFrame (payload: Buffer, isBinary: boolean): Buffer {
  const extended = payload.length > 125 ? 2 : 0
  const out = Buffer.alloc(6 + extended + payload.length)
  out[0] = isBinary ? 0x82 : 0x81
  out[1] = 0x80 | (extended === 0 ? payload.length : 126)
  if (extended !== 0) out.writeUInt16BE(payload.length, 2)
  const mask = [1, 2, 3, 4]
  const at = 2 + extended
  out.set(mask, at)
  for (let i = 0; i < payload.length; i++) out[at + 4 + i] = payload[i] ^ mask[i & 3]
  return out
}

const PER_READ = size > 4096 ? 4 : 64
const read = Buffer.concat(Array.from({ length: PER_READ }, () => clientFrame(Buffer.from('x'.repeat(size)), binary)))
const transports = Array.from({ length: 100 }, () => {
  const transport = new NullTransport()
  const ws = new WebSocket(transport, { heartbeatInterval: 0, incompleteMessageTimeout: 0 })
  ws.on('message', (data: Buffer, isBinary: boolean) => { ws.send(isBinary ? data : data.toString()) })
  return { transport, ws }
})
/** the read path of TCP sockets with the shared read buffer: WebSocket's (protected) onData, lent */
type Lendable = { onData: (chunk: Buffer, lent: boolean) => void }

async function run (iterations: number): Promise<number> {
  const start = process.cpuUsage()
  for (let i = 0; i < iterations; i++) {
    for (const { transport, ws } of transports) {
      if (lent) (ws as unknown as Lendable).onData(read, true)
      else transport.emit('data', Buffer.from(read))
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) * 1000 / (iterations * transports.length * PER_READ)
}

await run(200) // warm-up
const samples: number[] = []
for (let k = 0; k < 5; k++) samples.push(await run(300))
samples.sort((a, b) => a - b)
console.log(`${dir}: ${samples[2].toFixed(0)} ns per echoed ${size} B ${binary ? 'binary' : 'text'} message (median of 5; min ${samples[0].toFixed(0)}), ` +
  `${transports[0].transport.writes} writes on the first connection${lent ? ', lent reads' : ''}`)
