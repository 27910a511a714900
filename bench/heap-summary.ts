/**
 * Summarise a .heapsnapshot: self size and count per constructor / node name, top N, divided by
 * `per` (e.g. the number of idle connections) to read bytes per connection.
 * Usage: npx tsx bench/heap-summary.ts <file.heapsnapshot> [per=1] [N=30] [baseline.heapsnapshot]
 * With a baseline, the baseline's totals are subtracted first.
 */
import { readFileSync } from 'node:fs'

const [file, perArg = '1', top = '30', baseline] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: heap-summary <file.heapsnapshot> [per] [N] [baseline]')
const per = Number(perArg)

function summarise (path: string): { totals: Map<string, { size: number, count: number }>, all: number } {
const snap = JSON.parse(readFileSync(path, 'utf8')) as {
  snapshot: { meta: { node_fields: string[], node_types: [string[]] } }
  nodes: number[]
  strings: string[]
}
const fields = snap.snapshot.meta.node_fields
const types = snap.snapshot.meta.node_types[0]
const width = fields.length
const typeAt = fields.indexOf('type')
const nameAt = fields.indexOf('name')
const sizeAt = fields.indexOf('self_size')
const totals = new Map<string, { size: number, count: number }>()
let all = 0
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + typeAt]]
  let name = snap.strings[snap.nodes[i + nameAt]]
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)'
  if (type === 'code') name = '(code)'
  const key = `${type}: ${name.slice(0, 60)}`
  const size = snap.nodes[i + sizeAt]
  all += size
  const entry = totals.get(key) ?? { size: 0, count: 0 }
  entry.size += size
  entry.count++
  totals.set(key, entry)
}
return { totals, all }
}

const { totals, all } = summarise(file)
if (baseline !== undefined) {
  const base = summarise(baseline)
  for (const [key, entry] of totals) {
    const b = base.totals.get(key)
    if (b !== undefined) { entry.size -= b.size; entry.count -= b.count }
  }
  console.log(`baseline ${(base.all / 1024 / 1024).toFixed(1)} MiB; growth per ${per}: ${((all - base.all) / per).toFixed(0)} B`)
}
console.log(`total ${(all / 1024 / 1024).toFixed(1)} MiB; per ${per}: ${(all / per).toFixed(0)} B`)
for (const [key, { size, count }] of [...totals.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, Number(top))) {
  console.log(`${(size / per).toFixed(0).padStart(7)} B  ${(count / per).toFixed(2).padStart(6)}x  ${key}`)
}
