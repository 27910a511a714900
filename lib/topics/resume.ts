/**
 * The seam between history and live delivery, per subscribing socket. A subscription to a topic
 * with history is answered with `subscribed` (the position, and how many publications are
 * replayed, or why none can be), then the replayed publications in offset order, then the live
 * ones: nothing twice, nothing missing.
 *
 * While the store's read (or position) is in flight, live publications for that socket are held
 * in its seam, not written. When the read is answered, the held ones after the position read are
 * written after the replay and those at or before it are dropped (the replay carried them). A
 * store that delivers from a channel (Redis pub/sub) may still deliver publications the read
 * already carried: until a live publication passes the position read, the seam keeps dropping
 * those at or before it.
 *
 * Bounds: a seam holds at most `maxHeld` live publications (references to frames shared by every
 * subscriber, not copies). Past it, or when the store fails to answer, the socket is closed with
 * 1013 Try Again Later: its client reconnects and resumes from the last position it saw, so
 * nothing is silently lost.
 */
import { PreparedMessage } from '../connection/broadcast.js'
import type { WebSocket } from '../connection/connection.js'
import type { HistoryPosition, HistoryRead, StreamPublication, TopicHistory } from './history.js'
import { publicationEnvelope, subscribedMessage } from './envelope.js'

/** IANA WebSocket Close Code Number Registry: 1013 Try Again Later (RFC 6455 §11.7 registry) */
const TRY_AGAIN_LATER = 1013

export interface ResumeHost {
  readonly history: TopicHistory
  /** live publications one socket may hold while its read is in flight */
  readonly maxHeld: number
  /** the store delivers within append(): a read can never be ahead of the live stream */
  readonly synchronous: boolean
  onError (error: Error & { code?: string }): void
  /** run a write to a socket; deliveries it causes wait until it is done (offset order) */
  serially (write: () => void): void
}

/** One socket's seam on one topic. */
class Seam {
  /** live publications held while the read is in flight (null once answered) */
  held: Array<{ publication: StreamPublication, message: PreparedMessage }> | null = []
  /** the position the answer ended at: live publications up to it were replayed */
  floor: HistoryPosition | null = null
}

function isPromise<T> (value: T | Promise<T>): value is Promise<T> {
  return value !== null && typeof value === 'object' && typeof (value as Promise<T>).then === 'function'
}

function passes (publication: StreamPublication, floor: HistoryPosition): boolean {
  return publication.epoch !== floor.epoch || publication.offset > floor.offset
}

export class Resumptions {
  private readonly seams = new Map<string, Map<WebSocket, Seam>>()

  constructor (private readonly host: ResumeHost) {}

  /**
   * `socket` just subscribed to `topic`: answer with `subscribed` (resuming after `since` when
   * given), replay, then let live publications through.
   */
  start (socket: WebSocket, topic: string, since: HistoryPosition | undefined): void {
    const history = this.host.history
    let result: HistoryRead | HistoryPosition | Promise<HistoryRead | HistoryPosition>
    try {
      result = since === undefined ? history.position(topic) : history.read(topic, since)
    } catch (err) {
      this.failed(socket, err as Error)
      return
    }
    if (!isPromise(result)) {
      const answer = result
      const seam = this.host.synchronous ? null : this.open(socket, topic)
      this.host.serially(() => { this.answer(socket, topic, answer, seam) })
      return
    }
    const seam = this.open(socket, topic)
    result.then((answer) => {
      if (this.seamOf(socket, topic) === seam) this.host.serially(() => { this.answer(socket, topic, answer, seam) })
    }, (err: unknown) => {
      if (this.seamOf(socket, topic) !== seam) return
      this.drop(socket, topic)
      this.failed(socket, err as Error)
    })
  }

  /** The seams open on `topic` (undefined: none, every subscriber receives live publications). */
  on (topic: string): Map<WebSocket, Seam> | undefined {
    return this.seams.get(topic)
  }

  /**
   * A live publication for `socket`, which has a seam on its topic: true when the seam took it
   * (held while reading, or dropped as already replayed), false when it goes to the socket.
   */
  hold (seams: Map<WebSocket, Seam>, socket: WebSocket, publication: StreamPublication, message: PreparedMessage): boolean {
    const seam = seams.get(socket)
    if (seam === undefined) return false
    if (seam.held !== null) {
      if (seam.held.length < this.host.maxHeld) {
        seam.held.push({ publication, message })
      } else {
        this.drop(socket, publication.topic)
        socket.close(TRY_AGAIN_LATER, 'resume buffer overflow')
      }
      return true
    }
    if (!passes(publication, seam.floor!)) return true
    // the live stream has passed the replay: this socket needs no seam any more
    this.drop(socket, publication.topic)
    return false
  }

  /** `socket` left `topic` (unsubscribed, or closed): its seam goes. */
  drop (socket: WebSocket, topic: string): void {
    const seams = this.seams.get(topic)
    if (seams === undefined || !seams.delete(socket) || seams.size > 0) return
    this.seams.delete(topic)
  }

  private open (socket: WebSocket, topic: string): Seam {
    let seams = this.seams.get(topic)
    if (seams === undefined) this.seams.set(topic, seams = new Map())
    const seam = new Seam()
    seams.set(socket, seam)
    return seam
  }

  private seamOf (socket: WebSocket, topic: string): Seam | undefined {
    return this.seams.get(topic)?.get(socket)
  }

  /** `subscribed`, the replayed publications, then the held live ones after the replay. */
  private answer (socket: WebSocket, topic: string, answer: HistoryRead | HistoryPosition, seam: Seam | null): void {
    socket.sendPrepared(new PreparedMessage(subscribedMessage(topic, answer)))
    if ('ok' in answer && answer.ok) {
      for (const entry of answer.entries) {
        socket.sendPrepared(new PreparedMessage(publicationEnvelope({ topic, epoch: answer.epoch, offset: entry.offset, data: entry.data })))
      }
    }
    if (seam === null) return
    const floor = { epoch: answer.epoch, offset: answer.offset }
    const held = seam.held ?? []
    seam.held = null
    seam.floor = floor
    let passed = false
    for (const { publication, message } of held) {
      if (!passes(publication, floor)) continue
      socket.sendPrepared(message)
      passed = true
    }
    if (passed) this.drop(socket, topic)
  }

  /** The store could not answer: reported, and the socket told to come back. */
  private failed (socket: WebSocket, error: Error): void {
    this.host.onError(error)
    if (socket.readyState === 1) socket.close(TRY_AGAIN_LATER, 'topic history unavailable')
  }
}
