import { readFileSync } from 'node:fs'
const [file, target, type = 'object', depthArg = '3'] = process.argv.slice(2)
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
    const nm = et === 'element' || et === 'hidden' ? `[]` : snap.strings[snap.edges[j + enIdx]]
    rev[to].push([i, `${et}:${nm}`])
  }
}
const name = (i: number) => `${types[snap.nodes[i * nf]]}:${snap.strings[snap.nodes[i * nf + 1]].slice(0, 30)}`
const groups = new Map<string, number>()
for (let i = 0; i < N; i++) {
  if (snap.strings[snap.nodes[i * nf + 1]] !== target || types[snap.nodes[i * nf]] !== type) continue
  let sig = ''
  let cur = [i]
  for (let d = 0; d < Number(depthArg); d++) {
    const next: number[] = []
    const parts: string[] = []
    for (const c of cur) for (const [from, edge] of rev[c].slice(0, 3)) { parts.push(`${edge}<${name(from)}`); next.push(from) }
    sig += ' | ' + parts.sort().join(',')
    cur = next.slice(0, 3)
  }
  groups.set(sig, (groups.get(sig) ?? 0) + 1)
}
for (const [sig, n] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log(n, sig)
