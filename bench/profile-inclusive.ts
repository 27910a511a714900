/**
 * Inclusive time of named functions in a V8 .cpuprofile (self time plus everything they called),
 * as a share of all busy samples. Used to split a handshake into Node's and this plugin's parts.
 * Usage: npx tsx bench/profile-inclusive.ts <file.cpuprofile> <functionName> [functionName...]
 */
import { readFileSync } from 'node:fs'
interface Node { id: number, callFrame: { functionName: string, url: string }, children?: number[] }
const [file, ...names] = process.argv.slice(2)
const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[], samples: number[], timeDeltas: number[] }
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const incl = new Map<string, number>(); let total = 0
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i] ?? 0
  let id: number | undefined = p.samples[i]
  if (byId.get(id)!.callFrame.functionName === '(idle)') continue
  total += dt
  const seen = new Set<string>()
  while (id !== undefined) {
    const f = byId.get(id)!.callFrame.functionName
    if (names.includes(f) && !seen.has(f)) { seen.add(f); incl.set(f, (incl.get(f) ?? 0) + dt) }
    id = parent.get(id)
  }
}
for (const n of names) console.log(`${((incl.get(n) ?? 0) / total * 100).toFixed(1).padStart(5)}%  ${n}`)
