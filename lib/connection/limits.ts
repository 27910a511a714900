/**
 * Defaults of the connection's flow-control and liveness limits (issue 5).
 *
 * Every limit is on by default unless switching it on would change what a correct peer sees:
 *
 * | option                    | default                      | effect when exceeded                              |
 * |---------------------------|------------------------------|---------------------------------------------------|
 * | heartbeatInterval         | 30 000 ms                    | ping a silent peer; terminate (1006) if it stays  |
 * |                           |                              | silent for another interval                      |
 * | idleTimeout               | 0 (off)                      | close 1001 "idle timeout" (no message either way) |
 * | maxLifetime               | 0 (off)                      | close 1001 "max lifetime"                         |
 * | incompleteMessageTimeout  | 60 000 ms                    | close 1008 (a started message never finished)     |
 * | maxBufferedAmount         | max(4 MiB, 4 x maxPayload)   | policy 'close': close 1008; 'drop': drop + report |
 * | maxQueuedMessages / Bytes | 1024 / max(1 MiB, maxPayload)| reading pauses until the consumer catches up     |
 *
 * Node's HTTP server already bounds the upgrade request itself (before any of our code runs):
 * `maxHeaderSize` (16 KiB: 431), `server.maxHeadersCount` (2000: later headers are dropped),
 * `server.headersTimeout` (60 s: 408 and close), `server.requestTimeout` (300 s). An 'upgrade'
 * request is only handed to us once its headers are complete, so those bounds are the deadline
 * for the opening handshake.
 */

export type BufferedAmountPolicy = 'close' | 'drop'

export const LimitDefaults = {
  heartbeatInterval: 30_000,
  idleTimeout: 0,
  maxLifetime: 0,
  incompleteMessageTimeout: 60_000,
  bufferedAmountPolicy: 'close' as BufferedAmountPolicy,
  maxQueuedMessages: 1024
} as const

const MiB = 1024 * 1024

/** Outbound bytes one connection may hold before its policy applies. */
export function defaultMaxBufferedAmount (maxPayload: number): number {
  return Math.max(4 * MiB, 4 * maxPayload)
}

/** Inbound bytes queued for a lagging consumer before reading pauses. */
export function defaultMaxQueuedBytes (maxPayload: number): number {
  return Math.max(MiB, maxPayload)
}
