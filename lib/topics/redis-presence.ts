/**
 * Presence requests in flight: "how many subscribers does this topic have on your instance?"
 *
 * The requester publishes one request on the topic's own channel. Redis answers the PUBLISH
 * with the number of connections that received it, and exactly those instances hold a
 * subscription to the channel (interest-based routing: an instance subscribes while it has a
 * local subscriber). So the requester knows how many answers to wait for, with no registry of
 * instances, no keys to expire and no timer running while nobody asks. An instance that
 * crashed holds no subscription, so it is neither counted nor waited for.
 *
 * Each receiver answers once: another instance with a reply on the requester's reply channel;
 * the requester itself (it receives its own request when it is subscribed) with 0, because its
 * local count is added once by the caller.
 */

interface Pending {
  /** answers Redis said will come; -1 until the PUBLISH reply arrives */
  expected: number
  answers: number
  sum: number
  resolve (sum: number): void
  reject (error: Error): void
  timer: NodeJS.Timeout
}

export class PresenceRequests {
  private readonly pending = new Map<number, Pending>()
  private nextId = 0

  /** Open a request; it rejects with `onTimeout()` if every answer has not come within `timeout` ms. */
  open (timeout: number, onTimeout: () => Error): { id: number, answered: Promise<number> } {
    this.nextId = (this.nextId + 1) >>> 0
    const id = this.nextId
    const answered = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(onTimeout())
      }, timeout)
      this.pending.set(id, { expected: -1, answers: 0, sum: 0, resolve, reject, timer })
    })
    return { id, answered }
  }

  /** Redis delivered the request to `receivers` connections. */
  expect (id: number, receivers: number): void {
    const request = this.pending.get(id)
    if (request === undefined) return
    request.expected = receivers
    this.settleIfComplete(id, request)
  }

  /** One receiver answered with its local count. Unknown or late ids are ignored. */
  answer (id: number, count: number): void {
    const request = this.pending.get(id)
    if (request === undefined) return
    request.answers++
    request.sum += count
    this.settleIfComplete(id, request)
  }

  fail (id: number, error: Error): void {
    const request = this.pending.get(id)
    if (request === undefined) return
    this.pending.delete(id)
    clearTimeout(request.timer)
    request.reject(error)
  }

  failAll (error: Error): void {
    for (const id of [...this.pending.keys()]) this.fail(id, error)
  }

  private settleIfComplete (id: number, request: Pending): void {
    if (request.expected < 0 || request.answers < request.expected) return
    this.pending.delete(id)
    clearTimeout(request.timer)
    request.resolve(request.sum)
  }
}
