// The shared read buffer (lib/connection/shared-reads.ts) uses Node internals found by their
// symbol descriptions, so it is feature-detected: in a Node whose sockets lack those fields,
// sharedReadBufferSupported() is false and every connection keeps Node's own reads, with the same
// messages. Each case runs in its own process (the detection is once per process).
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const child = fileURLToPath(new URL('./fixtures/shared-reads-child.ts', import.meta.url))

interface Seen { supported: boolean, dataListeners: number[], got: string[] }

async function run (mode: 'hide' | 'keep'): Promise<Seen> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', child, mode], { timeout: 60_000 })
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as Seen
}

t.test('on this Node the fast path is detected: sockets read into the shared buffer', async (t) => {
  const seen = await run('keep')
  t.equal(seen.supported, true, `Node ${process.version} has the fields`)
  t.same(seen.dataListeners, [0], "the accepted socket has no 'data' listener: it reads into the shared buffer")
  t.same(seen.got, ['hello', 'every byte of 300000'])
})

t.test('without the fields: not supported, Node\'s own reads, same messages, no crash', async (t) => {
  const seen = await run('hide')
  t.equal(seen.supported, false, 'sharedReadBufferSupported() says so')
  t.same(seen.dataListeners, [1], "the accepted socket is read through a 'data' listener")
  t.same(seen.got, ['hello', 'every byte of 300000'], 'both messages echoed')
})
