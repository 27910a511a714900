/**
 * Where the client is in each topic's stream (resumable streams, the wire of
 * ../topics/history.ts): the last (epoch, offset) seen per topic, moved by `publication` envelopes
 * and `subscribed` answers, and sent back as the `resume` query parameter on a reconnection.
 * Within one epoch offsets increase by exactly one: an offset at or below the last one is a
 * duplicate (a replay that overlaps what was delivered live), an offset further on is a gap.
 * Pure: imports nothing at run time, like the rest of the client.
 */
import type { HistoryPosition } from '../topics/history.js'

/** What a `subscribed` answer says, or a loss seen in the publications themselves. */
export type Recovery =
  /** `recovered` publications follow (0: a fresh subscription) */
  | { topic: string, recovered: number }
  /**
   * 'epoch': the stream is not the one of the last position (history lost on the server);
   * 'too-old': publications after it were already dropped; 'gap': offsets skipped within an epoch.
   * The client continues live from the stream's current position.
   */
  | { topic: string, recovered: false, reason: 'epoch' | 'too-old' | 'gap' }

/** What to do with a `publication` envelope. */
export type Seen = 'bad' | 'duplicate' | 'next' | 'gap' | 'epoch'

/** The query parameter of a resume (RESUME_PARAMETER of ../topics/history.ts, which the bundle does not import). */
export const RESUME_PARAMETER = 'resume'
/** The resume parameter carries at most this many topics (the server ignores a longer one). */
export const MAX_RESUME_TOPICS = 100
export const MAX_EPOCH_LENGTH = 64

interface Positioned { topic: string, epoch: string, offset: number }

function isCount (value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0
}

function isPositioned (m: Record<string, unknown>): m is Record<string, unknown> & Positioned {
  return typeof m.topic === 'string' && m.topic.length > 0 && typeof m.epoch === 'string' &&
    m.epoch.length > 0 && m.epoch.length <= MAX_EPOCH_LENGTH && isCount(m.offset)
}

export class StreamPositions {
  /** by topic, least recently moved first */
  #last = new Map<string, HistoryPosition>()

  /** `{ [topic]: [epoch, offset] }` of the last MAX_RESUME_TOPICS topics moved */
  get positions (): Record<string, [string, number]> {
    return Object.fromEntries([...this.#last].map(([topic, { epoch, offset }]) => [topic, [epoch, offset]]))
  }

  get size (): number { return this.#last.size }

  /** Check a `publication` envelope and move the topic's position to it (not for a bad or duplicate one). */
  publication (m: Record<string, unknown>): Seen {
    if (!isPositioned(m) || m.offset === 0 || !Object.hasOwn(m, 'data')) return 'bad'
    const last = this.#last.get(m.topic)
    let seen: Seen = 'next'
    if (last !== undefined && last.epoch === m.epoch) {
      if (m.offset <= last.offset) return 'duplicate'
      if (m.offset !== last.offset + 1) seen = 'gap'
    } else if (last !== undefined) seen = 'epoch'
    this.#move(m.topic, m.epoch, m.offset)
    return seen
  }

  /**
   * Check a `subscribed` answer and place the topic where the publications that follow it start:
   * `offset` is the stream's last offset, so with `recovered: K` the K replayed ones are
   * offset-K+1..offset. Undefined for a bad shape.
   */
  subscribed (m: Record<string, unknown>): Recovery | undefined {
    const { recovered, reason } = m
    if (!isPositioned(m)) return undefined
    if (recovered === false && (reason === 'epoch' || reason === 'too-old')) {
      this.#move(m.topic, m.epoch, m.offset)
      return { topic: m.topic, recovered, reason }
    }
    if (!isCount(recovered) || recovered > m.offset) return undefined
    const last = this.#last.get(m.topic)
    const from = m.offset - recovered
    // never back within an epoch: what was delivered already stays a duplicate
    this.#move(m.topic, m.epoch, last?.epoch === m.epoch ? Math.max(last.offset, from) : from)
    return { topic: m.topic, recovered }
  }

  #move (topic: string, epoch: string, offset: number): void {
    this.#last.delete(topic)
    this.#last.set(topic, { epoch, offset })
    if (this.#last.size > MAX_RESUME_TOPICS) this.#last.delete(this.#last.keys().next().value as string)
  }
}
