/**
 * Topic history (resumable streams): the contract between the topic hub (./hub.ts) and a store
 * that keeps the last publications of a topic, each with an offset, so that a subscriber that
 * reconnects gets what it missed, or is told exactly why it cannot.
 *
 * Model:
 * - Every publication of a topic with history gets an `offset`: 1 for the first one of a stream,
 *   then increasing by exactly one. The store assigns it; nothing else does.
 * - Every stream has an `epoch`: an opaque string (at most 64 characters) that names one unbroken
 *   sequence of offsets. A store makes a new epoch whenever the offsets it hands out could have
 *   gaps or restart: a fresh in-process store (a restart), a topic whose history was forgotten, a
 *   Redis flush or failover that lost the counter. A position `{ epoch, offset }` is only
 *   meaningful within its epoch.
 * - A store keeps at most `maxMessages` publications per topic and none older than `maxAge` ms.
 *
 * Delivery: `append()` does not deliver. The store hands every appended publication, in offset
 * order per topic, to `host.deliver()` (the in-process store synchronously within `append()`; a
 * store shared by several processes from the channel that carries publications between them, so
 * that every process sees one order). The hub writes the envelope to the local subscribers.
 */

/** A position in a topic's stream. */
export interface HistoryPosition {
  readonly epoch: string
  /** the offset of the last publication seen (0: none yet in this epoch) */
  readonly offset: number
}

/** One publication kept in history: its offset and its data as JSON text. */
export interface HistoryEntry {
  readonly offset: number
  /** the publication's data, serialized once as JSON text */
  readonly data: string
}

/** What `read()` found for a resuming subscriber. */
export type HistoryRead =
  | {
    readonly ok: true
    /** the stream's epoch (the one asked for) */
    readonly epoch: string
    /** every publication after the position asked for, in order (possibly none) */
    readonly entries: readonly HistoryEntry[]
    /** the last offset of the stream when read (entries end there) */
    readonly offset: number
  }
  | {
    readonly ok: false
    /** 'epoch': the stream is not the one the position belongs to; 'too-old': publications after it were already dropped */
    readonly reason: 'epoch' | 'too-old'
    /** the stream's current epoch and last offset: where the subscriber continues from */
    readonly epoch: string
    readonly offset: number
  }

/** A publication with its place in the stream, as the store hands it to the hub. */
export interface StreamPublication {
  readonly topic: string
  readonly epoch: string
  readonly offset: number
  /** JSON text */
  readonly data: string
}

export interface HistoryHost {
  /** a publication with its offset, in offset order per topic, to the local subscribers */
  deliver (publication: StreamPublication): void
  /** a failure that may have cost publications (reported like adapter errors) */
  onError (error: Error & { code?: string }): void
}

export interface HistoryOptions {
  /** publications kept per topic; default 100 */
  readonly maxMessages: number
  /** ms a publication is kept; default 300000 (5 minutes) */
  readonly maxAge: number
}

export interface TopicHistory {
  /** called once by the hub before any other call; may be async */
  init (host: HistoryHost): void | Promise<void>
  /**
   * Give the next offset of `topic` to a publication (`data`: JSON text) and keep it. The store
   * delivers it through host.deliver() once its offset is known. Failures are reported through
   * host.onError, never thrown from another tick.
   */
  append (topic: string, data: string): void
  /** The publications of `topic` after `since`, or why they cannot be had. */
  read (topic: string, since: HistoryPosition): HistoryRead | Promise<HistoryRead>
  /** The stream's current position (epoch, last offset) without reading entries. */
  position (topic: string): HistoryPosition | Promise<HistoryPosition>
  /** release connections and timers */
  close (): Promise<void>
}

/**
 * The wire (text frames, JSON), documented in the README for clients of any language:
 * - a publication on a topic with history reaches a subscriber as
 *   `{"type":"publication","topic":T,"epoch":E,"offset":N,"data":<the published JSON value>}`
 * - a subscription to a topic with history is answered first with
 *   `{"type":"subscribed","topic":T,"epoch":E,"offset":N,"recovered":K}` (K publications replayed
 *   next, 0 for a fresh subscription) or, for a resume that cannot be served,
 *   `{"type":"subscribed","topic":T,"epoch":E,"offset":N,"recovered":false,"reason":"epoch"|"too-old"}`
 * - a client resumes by adding to the WebSocket URL the query parameter `resume`: the JSON text
 *   of `{ [topic]: [epoch, offset] }` (URL-encoded), the last position it saw per topic.
 */
export const PUBLICATION_TYPE = 'publication'
export const SUBSCRIBED_TYPE = 'subscribed'
export const RESUME_PARAMETER = 'resume'
