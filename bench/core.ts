/**
 * Micro-benchmark of the Sans-I/O core alone (no sockets): masked client frames cut into 64 KiB
 * "reads" go through receive() -> takeEvents() -> sendText/sendBinary (echo) -> takeOutput().
 * Reports CPU ns per message, so it stays usable on a busy machine, and compares two copies of
 * lib/ side by side when given --base=<dir> (interleaved rounds, each copy in its own process).
 *
 *   npx tsx bench/core.ts [--base=<dir holding lib/>] [--rounds=5]
 */
import { resolve } from 'node:path'
import { execFileSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildFrames } from './load/client.js'

type Core = typeof import('../lib/protocol/protocol.js')

const args = process.argv.slice(2)
const option = (name: string): string | undefined => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const rounds = Number(option('rounds') ?? 5)
const base = option('base')

const READ = 64 * 1024
const CASES = [
  { name: '32 B text', size: 32, binary: false, messages: 200_000 },
  { name: '1 KiB binary', size: 1024, binary: true, messages: 100_000 },
  { name: '64 KiB binary', size: 64 * 1024, binary: true, messages: 8000 },
  { name: '1 MiB binary', size: 1024 * 1024, binary: true, messages: 600 }
]

/** The byte stream of `messages` frames cut into reads of at most 64 KiB. */
function reads (size: number, binary: boolean, messages: number): Buffer[] {
  const perBlock = Math.max(1, Math.floor(READ / (size + 14)))
  const { block } = buildFrames(size, binary, Math.min(perBlock, messages))
  const out: Buffer[] = []
  let left = messages
  while (left > 0) {
    const n = Math.min(perBlock, left)
    const bytes = block.subarray(0, (block.length / Math.min(perBlock, messages)) * n)
    for (let o = 0; o < bytes.length; o += READ) out.push(bytes.subarray(o, Math.min(o + READ, bytes.length)))
    left -= n
  }
  return out
}

function run (core: Core, chunks: Buffer[]): number {
  const ws = new core.WebSocketProtocol({ role: 'server', maxPayload: 64 * 1024 * 1024 })
  let messages = 0
  const start = process.cpuUsage()
  for (const template of chunks) {
    // a socket read is a fresh buffer the parser owns (it unmasks in place)
    const chunk = Buffer.allocUnsafe(template.length)
    template.copy(chunk)
    ws.receive(chunk)
    const events = ws.takeEvents()
    for (let i = 0; i < events.length; i++) {
      const event = events[i]
      if (event.type !== 'message') continue
      messages++
      if (event.binary) ws.sendBinary(event.data)
      else ws.sendText(event.data.toString('utf8'))
    }
    ws.takeOutput()
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) * 1000 / messages
}

const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/** Child mode: measure one copy of lib/ (in its own process, so two copies never share JIT state). */
async function child (libDir: string): Promise<void> {
  const url = pathToFileURL(resolve(libDir, 'lib/protocol/protocol.ts')).href
  const core = await import(url) as Core
  const out: number[] = []
  for (const c of CASES) {
    const chunks = reads(c.size, c.binary, c.messages)
    run(core, chunks.slice(0, Math.ceil(chunks.length / 4))) // warm-up
    out.push(Math.min(run(core, chunks), run(core, chunks)))
  }
  process.stdout.write(JSON.stringify(out))
}

const childLib = option('child')
if (childLib !== undefined) {
  await child(childLib)
} else {
  const here = fileURLToPath(new URL('..', import.meta.url))
  const libs = [{ label: 'lib', dir: here }]
  if (base !== undefined) libs.push({ label: 'base', dir: resolve(base) })
  const results = new Map<string, number[][]>(libs.map((l) => [l.label, []]))
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? libs : [...libs].reverse()
    for (const l of order) {
      const stdout = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), `--child=${l.dir}`], { encoding: 'utf8' })
      results.get(l.label)!.push(JSON.parse(stdout) as number[])
    }
  }
  console.log(`core echo, CPU ns per message (median of ${rounds} rounds, one process per lib and round)`)
  CASES.forEach((c, i) => {
    const values = libs.map((l) => med(results.get(l.label)!.map((round) => round[i])))
    const line = libs.map((l, j) => `${l.label} ${values[j].toFixed(0)} ns`).join('  ')
    const ratio = libs.length === 2 ? `  lib/base ${(values[0] / values[1]).toFixed(2)}x` : ''
    console.log(`  ${c.name.padEnd(14)} ${line}${ratio}`)
  })
}
