/**
 * Starting server processes pinned to their own core, and talking to them over IPC.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ServerKind, ServerReply, ServerRequest } from './protocol.js'

const SERVER_ENTRY = fileURLToPath(new URL('./servers/main.ts', import.meta.url))
const BUN_ENTRY = fileURLToPath(new URL('./servers/bun.ts', import.meta.url))
export const SERVER_CORE = '1'
export const CLIENT_CORE = '0'

let taskset: boolean | undefined
export function hasTaskset (): boolean {
  if (taskset === undefined) {
    try {
      execFileSync('taskset', ['-V'], { stdio: 'ignore' })
      taskset = true
    } catch {
      taskset = false
    }
  }
  return taskset
}

/** Pin this process (every thread) to the load generator's core. */
export function pinSelf (): boolean {
  if (!hasTaskset()) return false
  try {
    execFileSync('taskset', ['-a', '-p', '-c', CLIENT_CORE, String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BUILD_DIR = resolve(ROOT, 'bench/results/build')

/**
 * Compile a copy of lib/ with the project's build (tsc, tsconfig.build.json) and return the
 * URL of its index.js. The plugin is measured as users run it: compiled JavaScript. Under tsx
 * every arrow function gets its `name` redefined (esbuild keepNames), which puts a 256-byte
 * property dictionary on each per-connection closure and inflates memory per connection.
 */
export function buildLib (srcDir: string, name: string): string {
  const outDir = resolve(BUILD_DIR, name)
  rmSync(outDir, { recursive: true, force: true })
  const tsc = resolve(ROOT, 'node_modules/typescript/bin/tsc')
  const entry = resolve(outDir, 'lib/index.js')
  try {
    execFileSync(process.execPath, [tsc, '-p', resolve(srcDir, 'tsconfig.build.json'), '--outDir', outDir, '--declaration', 'false', '--sourceMap', 'false'], { stdio: 'inherit' })
  } catch (err) {
    // type errors still emit JavaScript; only a missing output is fatal
    if (!existsSync(entry)) throw err
    console.warn(`bench: ${name} compiled with type errors (see above); measuring the emitted JavaScript`)
  }
  return pathToFileURL(entry).href
}

let bun: string | null | undefined
/**
 * The Bun binary of the `@oven/bun-linux-x64` devDependency when it is installed and runs on this
 * machine (the reference server `bun`), else null.
 */
export function bunBinary (): string | null {
  if (bun === undefined) {
    const path = resolve(ROOT, 'node_modules/@oven/bun-linux-x64/bin/bun')
    try {
      execFileSync(path, ['--version'], { stdio: 'ignore' })
      bun = path
    } catch {
      bun = null
    }
  }
  return bun
}

let ourLib: string | undefined
let baseLib: string | undefined
/** Where the `ours` server loads the plugin from (a URL; default: lib/ through tsx). */
export function setOurLib (url: string): void {
  ourLib = url
}
/** Where the `ours-base` server loads the plugin from (a URL). */
export function setBaseLib (url: string): void {
  baseLib = url
}

export class ServerProcess {
  readonly kind: ServerKind
  port = 0
  private readonly child: ChildProcess
  private nextId = 1
  private readonly pending = new Map<number, (reply: ServerReply) => void>()
  private exited = false

  private constructor (kind: ServerKind, extraNodeArgs: string[]) {
    this.kind = kind
    const runtime = kind === 'bun' ? bunBinary() : process.execPath
    if (runtime === null) throw new Error('the bun server needs the @oven/bun-linux-x64 package (a devDependency)')
    // Bun runs TypeScript itself; its server takes no Node flags
    const nodeArgs = kind === 'bun' ? [BUN_ENTRY] : ['--expose-gc', ...extraNodeArgs, '--import', 'tsx', SERVER_ENTRY, kind]
    const env = { ...process.env }
    if (kind === 'ws-nobu') env.WS_NO_BUFFER_UTIL = '1'
    else delete env.WS_NO_BUFFER_UTIL
    if (kind === 'ours-base') {
      if (baseLib === undefined) throw new Error('the ours-base server needs --base=<dir>')
      env.BENCH_LIB = baseLib
    } else if ((kind === 'ours' || kind === 'ours-bare' || kind === 'ours-lent') && ourLib !== undefined) {
      env.BENCH_LIB = ourLib
    } else delete env.BENCH_LIB
    const [command, args] = hasTaskset()
      ? ['taskset', ['-c', SERVER_CORE, runtime, ...nodeArgs]]
      : [runtime, nodeArgs]
    this.child = spawn(command, args as string[], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env })
    this.child.on('message', (reply: ServerReply) => {
      const resolve = this.pending.get(reply.id)
      if (resolve !== undefined) {
        this.pending.delete(reply.id)
        resolve(reply)
      }
    })
    this.child.on('exit', () => { this.exited = true })
  }

  static async start (kind: ServerKind, extraNodeArgs: string[] = []): Promise<ServerProcess> {
    const server = new ServerProcess(kind, extraNodeArgs)
    const ready = await new Promise<ServerReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${kind} server did not start in 30 s`)), 30_000)
      server.pending.set(0, (reply) => { clearTimeout(timer); resolve(reply) })
      server.child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${kind} server exited (${String(code)})`)) })
    })
    server.port = ready.port ?? 0
    return server
  }

  request (cmd: ServerRequest['cmd'], extra: Omit<ServerRequest, 'id' | 'cmd'> = {}): Promise<ServerReply> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      if (this.exited) { reject(new Error(`${this.kind} server has exited`)); return }
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${this.kind} server did not answer ${cmd}`))
      }, 120_000)
      this.pending.set(id, (reply) => { clearTimeout(timer); resolve(reply) })
      this.child.send({ id, cmd, ...extra } satisfies ServerRequest)
    })
  }

  async stop (): Promise<void> {
    if (this.exited) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.disconnect()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}

/** CPU seconds between two cpuUsage() snapshots. */
export function cpuSeconds (before: NodeJS.CpuUsage, after: NodeJS.CpuUsage): number {
  return (after.user - before.user + after.system - before.system) / 1e6
}

/** Share of one core a server used between two of its replies, over its own clock. */
export function cpuShare (before: ServerReply, after: ServerReply): number {
  return cpuSeconds(before.cpu, after.cpu) / (after.time - before.time)
}
