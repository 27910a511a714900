/**
 * Summarise a V8 .cpuprofile: self time per function (top N), as a share of all samples.
 * Usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [N]
 */
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

const [file, top = '30'] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: profile-summary <file.cpuprofile> [N]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const self = new Map<string, number>()
let total = 0
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i])!
  const dt = profile.timeDeltas[i] ?? 0
  const { functionName, url, lineNumber } = node.callFrame
  const name = functionName === '(idle)' || functionName === '(program)' || functionName === '(garbage collector)'
    ? functionName
    : `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|work\/main)\//, '')}:${lineNumber + 1}`
  if (functionName === '(idle)') continue
  self.set(name, (self.get(name) ?? 0) + dt)
  total += dt
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(top))
console.log(`busy ${(total / 1e6).toFixed(2)} s`)
for (const [name, t] of rows) console.log(`${(t / total * 100).toFixed(1).padStart(5)}%  ${name}`)
