// ioredis is an optional peer dependency: the main entry never reaches it, only
// `fastify-rfc6455/redis` does. Follows every static and dynamic import of lib/ from each entry.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url))
const IMPORT = /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm

/** Every file of lib/ and every package an entry reaches through its imports (type-only ones too). */
function reach (entry: string): { files: Set<string>, packages: Set<string> } {
  const files = new Set<string>()
  const packages = new Set<string>()
  const queue = [resolve(LIB, entry)]
  while (queue.length > 0) {
    const file = queue.pop() as string
    if (files.has(file)) continue
    files.add(file)
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2]
      if (specifier.startsWith('.')) queue.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')))
      else packages.add(specifier)
    }
  }
  return { files, packages }
}

t.test('the main entry never imports ioredis nor the Redis adapter', async (t) => {
  const main = reach('index.ts')
  t.ok(main.files.size > 10, `followed ${main.files.size} files`)
  t.notOk(main.packages.has('ioredis'), 'no ioredis import')
  t.same([...main.files].filter((f) => /redis/.test(f)), [], 'no redis module of lib/')
})

t.test('fastify-rfc6455/redis does', async (t) => {
  const redis = reach('redis.ts')
  t.ok(redis.packages.has('ioredis'))
  t.ok([...redis.files].some((f) => f.endsWith('topics/redis-adapter.ts')))
})
