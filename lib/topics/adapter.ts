/**
 * The contract between a process's topic hub and whatever carries publications to other
 * processes. The hub owns the local subscribers and delivers to them itself; an adapter only
 * forwards. The default adapter is in-process (it forwards nothing); a Redis adapter forwards
 * through Redis pub/sub channels, one per topic that has a local subscriber.
 *
 * Rules every adapter keeps:
 * - `subscribe(topic)` is called when the first local subscriber of a topic appears and
 *   `unsubscribe(topic)` when the last one leaves; an adapter listens for remote publications of
 *   exactly the topics it was asked to (interest-based routing).
 * - `publish()` forwards a publication made in this process to the other processes; the adapter
 *   never hands a publication back to the process that made it (the hub has already delivered
 *   it locally), so each subscriber receives it exactly once.
 * - Remote publications reach the hub through the `deliver` callback given to `init()`, in the
 *   order each publisher made them, per topic.
 * - Nothing an adapter does may throw into the hub from another tick: a failure to forward is
 *   reported through `onError` (counted, logged by the hub) and the local delivery stands.
 * - An adapter may keep topic history itself (`history()`): the hub then appends publications of
 *   topics with history to that store, which carries them to every process (this one too) and
 *   delivers them through its own host, and the hub does not `publish()` them. Without it, the
 *   hub keeps history in an in-process store and forwards those publications as JSON.
 */

import type { HistoryOptions, TopicHistory } from './history.js'

/** One publication as it crosses process boundaries: the payload as sent, text or binary. */
export interface TopicPublication {
  readonly topic: string
  /** the message payload (UTF-8 bytes for text) */
  readonly payload: Buffer
  readonly binary: boolean
  /**
   * Optional (adapters that do not carry it deliver the payload as plain text): the payload is
   * the JSON text of a plain object or array, so a receiving process serializes it again through
   * each local subscriber's `schema.outbound`, which may strip fields. Adapters carry it as is.
   */
  readonly json?: boolean
}

export interface TopicAdapterHost {
  /** hand a publication made by another process to the local subscribers of its topic */
  deliver (publication: TopicPublication): void
  /** report a failure that cost publications (an outage, a refused command) */
  onError (error: Error & { code?: string }): void
  /** how many subscribers this process has on a topic (for presence) */
  localCount (topic: string): number
}

export interface TopicAdapter {
  /** called once by the hub before any other call; may be async (connect) */
  init (host: TopicAdapterHost): void | Promise<void>
  /** this process now has a subscriber of `topic` (the first one) */
  subscribe (topic: string): void | Promise<void>
  /** this process no longer has any subscriber of `topic` */
  unsubscribe (topic: string): void | Promise<void>
  /** forward a publication made in this process to the other processes */
  publish (publication: TopicPublication): void
  /** subscribers of `topic` across every process (presence); in-process: the local count */
  subscriberCount (topic: string): Promise<number>
  /** release connections and timers; called when the Fastify instance closes */
  close (): Promise<void>
  /**
   * Optional: a history store shared by every process this adapter reaches, created once by the
   * hub when the plugin's `history` option is on (the hub calls its init() after the adapter's).
   * Without it the hub uses the in-process store.
   */
  history? (options: HistoryOptions): TopicHistory
}
