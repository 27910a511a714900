/**
 * A ws client on /topics/:topic that records what it receives (text as is, binary as
 * `bin:<hex>`); waits are event driven with a deadline.
 */
import type { Test } from 'tap'
import { WebSocket as WsClient } from 'ws'

export interface Received { text: string, binary: boolean }

export class Client {
  readonly received: Received[] = []
  private waiters: Array<() => void> = []
  private constructor (readonly ws: WsClient, readonly topic: string) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      this.received.push({ text: binary ? data.toString('hex') : data.toString(), binary })
      for (const wake of this.waiters.splice(0)) wake()
    })
  }

  static async open (t: Test, port: number, topic: string): Promise<Client> {
    const ws = new WsClient(`ws://127.0.0.1:${port}/topics/${encodeURIComponent(topic)}`)
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    t.teardown(() => ws.terminate())
    return new Client(ws, topic)
  }

  /** Resolve once `n` messages were received (deadline 20 s). */
  async until (n: number, what = `${n} messages`): Promise<void> {
    const deadline = Date.now() + 20_000
    while (this.received.length < n) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`deadline: ${what} (got ${this.received.length} messages)`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  texts (): string[] {
    return this.received.map((r) => (r.binary ? `bin:${r.text}` : r.text))
  }

  async close (): Promise<void> {
    if (this.ws.readyState === WsClient.CLOSED) return
    const closed = new Promise((resolve) => this.ws.once('close', resolve))
    this.ws.close()
    await closed
  }
}
