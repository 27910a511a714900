/**
 * A topic hub's side of the history contract, recorded: the publications a store delivered and
 * the failures it reported. Waits are event driven and bounded by a deadline.
 */
import { EventEmitter } from 'node:events'
import type { HistoryHost, StreamPublication } from '../../lib/topics/history.js'
import { untilChange } from './host.js'

export class HistoryRecorder extends EventEmitter implements HistoryHost {
  readonly delivered: StreamPublication[] = []
  readonly errors: Array<Error & { code?: string }> = []

  deliver (publication: StreamPublication): void {
    this.delivered.push(publication)
    this.emit('change')
  }

  onError (error: Error & { code?: string }): void {
    this.errors.push(error)
    this.emit('change')
  }

  /** Resolve when `check()` holds (checked now and after every delivery or error). */
  until (check: () => boolean, what: string, ms = 20_000): Promise<void> {
    return untilChange(this, check, () => `${what} (delivered ${this.delivered.length})`, ms)
  }

  /** `epoch:offset:data` of each delivery of `topic`, in order. */
  of (topic: string): string[] {
    return this.delivered.filter((p) => p.topic === topic).map((p) => `${p.epoch}:${p.offset}:${p.data}`)
  }

  offsets (topic: string): number[] {
    return this.delivered.filter((p) => p.topic === topic).map((p) => p.offset)
  }
}
