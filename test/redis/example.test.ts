// examples/pubsub.ts as a user runs it: `node --import tsx examples/pubsub.ts` twice, with HOST,
// PORT and REDIS_URL, one real redis-server, ws clients on both instances.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { Client } from './client.js'
import { askUntil, freePort, redisFor } from './redis-server.js'

const EXAMPLE = fileURLToPath(new URL('../../examples/pubsub.ts', import.meta.url))

/**
 * Run the example; resolves with its port once it logged that it listens. The deadline (120 s) is
 * for a child that hangs: a child loading tsx and fastify took over 30 s on a loaded machine.
 */
async function runExample (t: Test, env: Record<string, string>): Promise<number> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', EXAMPLE], {
    env: { ...process.env, NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => { child.kill('SIGKILL'); await exited })
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example not listening within 120 s:\n${output}`)), 120_000)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes(`listening at http://127.0.0.1:${port}`)) { clearTimeout(timer); resolve() }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`example exited (${String(code)}):\n${output}`)) })
  })
  return port
}

t.test('examples/pubsub.ts: two instances on one Redis share topics', async (t) => {
  const server = await redisFor(t)
  const redis = new Redis(server.url)
  t.teardown(() => { redis.disconnect() })
  const [a, b] = await Promise.all([runExample(t, { REDIS_URL: server.url }), runExample(t, { REDIS_URL: server.url })])
  const a1 = await Client.open(t, a, 'lobby')
  const a2 = await Client.open(t, a, 'lobby')
  const b1 = await Client.open(t, b, 'lobby')
  const k1 = await Client.open(t, a, 'kitchen')
  const b2 = await Client.open(t, b, 'kitchen')
  // both instances hold both topics in Redis
  await askUntil(async () => {
    const numsub = await redis.call('PUBSUB', 'NUMSUB', 'fastify-rfc6455#t#lobby', 'fastify-rfc6455#t#kitchen') as Array<string | number>
    return Number(numsub[1]) === 2 && Number(numsub[3]) === 2
  }, 'the instances subscribed')

  a1.ws.send('hello lobby')
  a1.ws.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]))
  await Promise.all([a2.until(2), b1.until(2)])
  b1.ws.send('bye')
  await Promise.all([a1.until(1), a2.until(3)])
  t.same(a2.texts(), ['hello lobby', 'bin:deadbeef', 'bye'], 'same instance: once each, same opcode')
  t.same(b1.texts(), ['hello lobby', 'bin:deadbeef'], 'other instance: once each, same opcode, not its own')
  t.same(a1.texts(), ['bye'], 'never echoed to the sender')
  // b2 was on b when the lobby messages arrived there: had they leaked, they would come first
  k1.ws.send('kitchen only')
  await b2.until(1)
  t.same(b2.texts(), ['kitchen only'], 'another topic receives only its own publications')
  t.same(k1.texts(), [])
})

t.test('examples/pubsub.ts without REDIS_URL: topics in one process', async (t) => {
  const port = await runExample(t, {})
  const x = await Client.open(t, port, 'solo')
  const y = await Client.open(t, port, 'solo')
  x.ws.send('one process')
  await y.until(1)
  t.same(y.texts(), ['one process'])
})
