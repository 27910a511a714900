/**
 * Who keeps an object alive: prints the retainer tree (up to `depth` levels, 6 retainers each)
 * of the first object named `constructor` in a .heapsnapshot.
 * Usage: npx tsx bench/heap-retainers.ts <file.heapsnapshot> <constructor> [depth=6]
 */
import { readFileSync } from 'node:fs'
const [file, target, depthArg = '6'] = process.argv.slice(2)
const snap = JSON.parse(readFileSync(file, 'utf8'))
const m = snap.snapshot.meta
const nf = m.node_fields.length, ef = m.edge_fields.length
const types = m.node_types[0], etypes = m.edge_types[0]
const N = snap.nodes.length / nf
const firstEdge = new Int32Array(N + 1)
let e = 0
const ecIdx = m.node_fields.indexOf('edge_count')
for (let i = 0; i < N; i++) { firstEdge[i] = e; e += snap.nodes[i * nf + ecIdx] * ef }
firstEdge[N] = e
const rev: Array<Array<[number, string]>> = Array.from({ length: N }, () => [])
const toIdx = m.edge_fields.indexOf('to_node'), enIdx = m.edge_fields.indexOf('name_or_index'), etIdx = m.edge_fields.indexOf('type')
for (let i = 0; i < N; i++) {
  for (let j = firstEdge[i]; j < firstEdge[i + 1]; j += ef) {
    const to = snap.edges[j + toIdx] / nf
    const et = etypes[snap.edges[j + etIdx]]
    if (et === 'weak') continue
    const nm = et === 'element' || et === 'hidden' ? `[${snap.edges[j + enIdx]}]` : snap.strings[snap.edges[j + enIdx]]
    rev[to].push([i, `${et}:${nm}`])
  }
}
const name = (i: number) => `${types[snap.nodes[i * nf]]}:${snap.strings[snap.nodes[i * nf + 1]].slice(0, 40)}`
const start = [...Array(N).keys()].find((i) => snap.strings[snap.nodes[i * nf + 1]] === target && types[snap.nodes[i * nf]] === 'object')!
function walk (i: number, depth: number, indent: string, seen: Set<number>) {
  if (depth === 0) return
  for (const [from, edge] of rev[i].slice(0, 6)) {
    if (seen.has(from)) continue
    seen.add(from)
    console.log(`${indent}<- ${edge} of ${name(from)}`)
    walk(from, depth - 1, indent + '  ', seen)
  }
}
console.log(name(start)); walk(start, Number(depthArg), '', new Set([start]))
