/**
 * A topic hub's side of the adapter contract, recorded: what a host received (deliveries,
 * reported errors) and the local subscriber counts it answers with. Waits are event driven and
 * bounded by a deadline.
 */
import { EventEmitter } from 'node:events'
import type { TopicAdapterHost, TopicPublication } from '../../lib/topics/adapter.js'

export type ReportedError = Error & { code?: string, unforwarded?: number, recovered?: boolean }

/** Resolve when `check()` holds, checked now and on every 'change' of `emitter`, within `ms`. */
export function untilChange (emitter: EventEmitter, check: () => boolean, what: string | (() => string), ms: number): Promise<void> {
  if (check()) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { emitter.off('change', onChange); reject(new Error(`deadline: ${typeof what === 'string' ? what : what()}`)) }, ms)
    const onChange = (): void => {
      if (!check()) return
      clearTimeout(timer)
      emitter.off('change', onChange)
      resolve()
    }
    emitter.on('change', onChange)
  })
}

export class RecordingHost extends EventEmitter implements TopicAdapterHost {
  readonly delivered: TopicPublication[] = []
  readonly errors: ReportedError[] = []
  readonly counts = new Map<string, number>()

  deliver (publication: TopicPublication): void {
    this.delivered.push(publication)
    this.emit('change')
  }

  onError (error: ReportedError): void {
    this.errors.push(error)
    this.emit('change')
  }

  localCount (topic: string): number {
    return this.counts.get(topic) ?? 0
  }

  /** Resolve when `check()` holds (checked now and after every delivery or error). */
  until (check: () => boolean, what: string, ms = 15_000): Promise<void> {
    return untilChange(this, check, what, ms)
  }

  texts (): string[] {
    return this.delivered.map((p) => `${p.topic}:${p.binary ? 'bin' : 'text'}:${p.payload.toString()}`)
  }
}
