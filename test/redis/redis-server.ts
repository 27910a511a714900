/**
 * Real redis-server processes for tests, each on a free port of 127.0.0.1, with persistence
 * off. `stop()` kills the process (SIGKILL: an outage as abrupt as a crash) and `start()` brings
 * it back on the same port. Every server still running is killed when the test process exits,
 * even on failure.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const running = new Set<ChildProcess>()
process.on('exit', () => { for (const child of running) child.kill('SIGKILL') })

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export class RedisServer {
  private child: ChildProcess | null = null
  constructor (readonly port: number, private readonly extraArgs: string[] = []) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Start the server; resolves when it accepts connections (deadline 10 s). */
  async start (): Promise<void> {
    if (this.child !== null) return
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    running.add(child)
    child.once('exit', () => { running.delete(child); if (this.child === child) this.child = null })
    let output = ''
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`redis-server on port ${this.port} not ready within 10 s:\n${output}`)), 10_000)
      const onData = (chunk: Buffer): void => {
        output += chunk.toString()
        if (output.includes('Ready to accept connections')) finish()
      }
      const onExit = (): void => finish(new Error(`redis-server on port ${this.port} exited:\n${output}`))
      function finish (error?: Error): void {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        child.off('exit', onExit)
        child.stdout?.resume()
        child.stderr?.resume()
        if (error === undefined) resolve()
        else reject(error)
      }
      child.stdout?.on('data', onData)
      child.once('exit', onExit)
    })
  }

  /** Freeze the server (SIGSTOP): connections stay up, nothing is read or answered. */
  pause (): void {
    this.child?.kill('SIGSTOP')
  }

  /** Let a paused server run again (SIGCONT). */
  resume (): void {
    this.child?.kill('SIGCONT')
  }

  /** Kill the server at once and wait for the process to end. */
  async stop (): Promise<void> {
    const child = this.child
    if (child === null) return
    this.child = null
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }
}

/** A started redis-server on a free port. */
export async function startRedis (): Promise<RedisServer> {
  const server = new RedisServer(await freePort())
  await server.start()
  return server
}

/** A started redis-server, killed when the test `t` ends. */
export async function redisFor (t: { teardown (fn: () => unknown): void }): Promise<RedisServer> {
  const server = await startRedis()
  t.teardown(() => server.stop())
  return server
}

/**
 * A Redis Cluster of `n` primaries (no replicas) on free ports, slots spread by
 * `redis-cli --cluster create`; resolves once every node reports `cluster_state:ok`.
 */
export async function startCluster (n = 3): Promise<{ nodes: RedisServer[], stop (): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'))
  const nodes: RedisServer[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((node) => node.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < n; i++) {
      const port = await freePort()
      const node = new RedisServer(port, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir])
      nodes.push(node)
      await node.start()
    }
    const create = spawn(process.env.REDIS_CLI ?? 'redis-cli', ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    create.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    create.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const code = await new Promise((resolve) => create.once('exit', resolve))
    if (code !== 0) throw new Error(`redis-cli --cluster create failed:\n${output}`)
    for (const node of nodes) {
      const redis = new Redis(node.port, '127.0.0.1')
      try {
        // Redis announces no event when a node's view of the cluster turns ok (its cron checks
        // every 100 ms)
        await askUntil(async () => String(await redis.call('CLUSTER', 'INFO')).includes('cluster_state:ok'), `cluster node ${node.port} ok`)
      } finally {
        redis.disconnect()
      }
    }
    return { nodes, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * For state Redis announces no event for (a cluster's health, another process's
 * subscriptions): ask again every 25 ms until `check()` holds, within a deadline.
 */
export async function askUntil (check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`deadline: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
