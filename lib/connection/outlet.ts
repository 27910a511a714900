/**
 * One outlet for a process's outgoing bytes: a connection with something to write does not
 * write at once, it asks to be flushed at the end of the current tick (this module's one list
 * of connections, drained once in a microtask). So everything sent to one connection within
 * one tick leaves in one write, whether it was an answer to that connection's own read, a
 * broadcast or a publication started by another connection's read, or a timer's Ping.
 * bufferedAmount counts the bytes still waiting here, so maxBufferedAmount holds meanwhile.
 */

/** the method the outlet calls (a symbol: not part of a connection's public API) */
export const kFlushNow: unique symbol = Symbol('fastify-rfc6455.flush-now')

/** What the outlet needs from a connection. */
export interface Flushable {
  /** write everything the connection queued, in one write where possible; never throws */
  [kFlushNow] (): void
}

let pending: Flushable[] = []
let spare: Flushable[] = []
let scheduled = false

function drain (): void {
  // connections that ask again while the list drains are flushed in this same pass
  const list = pending
  for (let i = 0; i < list.length; i++) list[i][kFlushNow]()
  pending = spare
  spare = list
  list.length = 0
  scheduled = false
}

/** Flush `connection` at the end of this tick (the caller asks once per tick: see its flag). */
export function flushLater (connection: Flushable): void {
  pending.push(connection)
  if (!scheduled) {
    scheduled = true
    queueMicrotask(drain)
  }
}
