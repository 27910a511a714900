import { unmaskInPlace } from '../lib/protocol/mask.js'
import { randomBytes } from 'node:crypto'
let bad = 0
for (let t = 0; t < 3000; t++) {
  const len = t < 1000 ? t : Math.floor(Math.random() * 200000)
  const off = Math.floor(Math.random() * 7)
  const big = randomBytes(len + off + 5)
  const data = big.subarray(off, off + len + 3)
  const mask = randomBytes(8); const mo = Math.floor(Math.random() * 4); const k0 = Math.floor(Math.random() * 4)
  const start = Math.floor(Math.random() * 3)
  const n = len
  const exp = Buffer.from(data); let k = k0
  for (let i = start; i < start + n; i++) { exp[i] ^= mask[mo + k]; k = (k + 1) & 3 }
  const rk = unmaskInPlace(data, start, n, mask, mo, k0)
  if (!exp.equals(data) || rk !== k) { bad++; if (bad < 5) console.log('mismatch', len, off, start) }
}
console.log('bad', bad)
