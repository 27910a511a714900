/**
 * Reconnection delays: exponential backoff with jitter. The n-th retry waits
 * min(maxDelay, initialDelay * factor^(n-1)), less a random part of up to `jitter` of it, so
 * clients that lost the same server do not all come back in the same millisecond.
 */
export interface ReconnectOptions {
  /** ms before the first retry; default 500 */
  initialDelay?: number
  /** ms cap of a delay; default 30000 */
  maxDelay?: number
  /** growth per retry; default 2 */
  factor?: number
  /** share of a delay that is random, 0..1; default 0.5 */
  jitter?: number
  /** retries after a connection is lost (or never opened) before giving up; default Infinity */
  maxRetries?: number
}

export type Backoff = Required<ReconnectOptions>

export const defaultBackoff: Backoff = { initialDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5, maxRetries: Infinity }

/** The delay of retry number `attempt` (1 for the first), given a random number in [0, 1). */
export function retryDelay (backoff: Backoff, attempt: number, random: number): number {
  const base = Math.min(backoff.maxDelay, backoff.initialDelay * backoff.factor ** (attempt - 1))
  return Math.round(base * (1 - backoff.jitter * random))
}
