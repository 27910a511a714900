/**
 * Node child processes driven over IPC, for multi-process tests and benchmarks.
 *
 * Parent side: `IpcChild.start(script)` runs `node --import tsx script`, resolves on the child's
 * `{ type: 'ready' }` message, and `request(cmd, args)` sends `{ id, cmd, ...args }` and resolves
 * with the reply of that id. Other messages from the child are emitted as `'event'`. Every child
 * still running is killed when the parent exits, and a child exits when its parent goes (the
 * IPC channel closes), so nothing outlives a failed run.
 *
 * Child side: `serveIpc(handlers)` answers requests; `notifyParent(message)` sends an event.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'

type Message = Record<string, unknown>

const running = new Set<ChildProcess>()
process.on('exit', () => { for (const child of running) child.kill('SIGKILL') })

export class IpcChild extends EventEmitter {
  ready: Message = {}
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (m: Message) => void, reject: (e: Error) => void }>()
  private exited = false

  private constructor (private readonly child: ChildProcess, readonly name: string) {
    super()
    running.add(child)
    child.on('message', (message: Message) => {
      const waiter = typeof message.id === 'number' ? this.pending.get(message.id) : undefined
      if (waiter === undefined) { this.emit('event', message); return }
      this.pending.delete(message.id as number)
      if (typeof message.error === 'string') waiter.reject(Object.assign(new Error(message.error), { code: message.code }))
      else waiter.resolve(message)
    })
    child.once('exit', (code, signal) => {
      this.exited = true
      running.delete(child)
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (${String(code ?? signal)})`))
      this.pending.clear()
      this.emit('exit')
    })
  }

  /**
   * Start `script` and wait for its `{ type: 'ready' }` message. The deadline (120 s) is for a
   * child that hangs, not a measure: on a starved CI machine three children starting together
   * took over 30 s (loading tsx, fastify and ioredis is CPU-bound).
   */
  static async start (script: string, options: { name: string, env?: NodeJS.ProcessEnv, nodeArgs?: string[] }): Promise<IpcChild> {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', script], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...options.env }
    })
    const ipc = new IpcChild(child, options.name)
    ipc.ready = await new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => { void ipc.kill(); reject(new Error(`${options.name} not ready within 120 s`)) }, 120_000)
      const onEvent = (message: Message): void => {
        if (message.type !== 'ready') return
        clearTimeout(timer)
        ipc.off('event', onEvent)
        resolve(message)
      }
      ipc.on('event', onEvent)
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${options.name} exited before ready (${String(code)})`)) })
    })
    return ipc
  }

  request (cmd: string, args: Message = {}, ms = 30_000): Promise<Message> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`))
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`${this.name} did not answer ${cmd}`)) }, ms)
      this.pending.set(id, {
        resolve: (m) => { clearTimeout(timer); resolve(m) },
        reject: (e) => { clearTimeout(timer); reject(e) }
      })
      this.child.send({ id, cmd, ...args })
    })
  }

  /** Resolve with the first event for which `match` holds (deadline `ms`). */
  waitFor (match: (message: Message) => boolean, what: string, ms = 20_000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.off('event', onEvent); reject(new Error(`${this.name}: deadline waiting for ${what}`)) }, ms)
      const onEvent = (message: Message): void => {
        if (!match(message)) return
        clearTimeout(timer)
        this.off('event', onEvent)
        resolve(message)
      }
      this.on('event', onEvent)
    })
  }

  /** Kill the child at once (SIGKILL) and wait for it to end. */
  async kill (): Promise<void> {
    if (this.exited) return
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGKILL')
    await exited
  }
}

type Handler = (message: Message) => unknown

/** Child side: answer the parent's requests with `handlers[cmd]`; exit when the parent goes. */
export function serveIpc (handlers: Record<string, Handler>): void {
  process.on('disconnect', () => process.exit(0))
  process.on('message', (message: Message) => {
    const id = message.id
    const handler = handlers[String(message.cmd)]
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown command ${String(message.cmd)}`)
        return handler(message)
      })
      .then(
        (reply) => notifyParent({ ...(reply as Message | undefined), id }),
        (error: Error & { code?: string }) => notifyParent({ id, error: error.message, code: error.code })
      )
  })
}

export function notifyParent (message: Message): void {
  // the parent may be gone already (its test timed out): the 'disconnect' handler is exiting
  // this child, and a send on the closed channel would crash it with ERR_IPC_CHANNEL_CLOSED
  if (process.connected) process.send?.(message)
}
