/**
 * Defaults of the connection's flow-control and liveness limits.
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
 * | allowedOrigins (plugin)   | any origin                   | 403 before the upgrade                            |
 * | maxConnections (plugin)   | no limit                     | 503 (Retry-After: 1) before the handshake         |
 *
 * The last two live in the Fastify layer (lib/plugin/options.ts); every option is a plugin
 * option and a route option (the route's value wins; a route's maxConnections counts that
 * route, the plugin's counts every route of the registration).
 *
 * Also bounded, without an option: a peer that sends Pings (or anything the core answers by
 * itself) and never reads cannot grow our output past maxBufferedAmount: reading pauses until
 * the socket drains. An incomplete message pins at most maxPayload bytes (the accumulator
 * grows by doubling, capped by maxPayload; fragments cost no memory of their own) and at most
 * maxFragments frames; incompleteMessageTimeout bounds how long it may be held.
 *
 * Node's HTTP server already bounds the upgrade request itself, before any of our code runs
 * (an 'upgrade' request reaches us only once its head is complete):
 * - `maxHeaderSize` (16 KiB by default; Fastify `http: { maxHeaderSize }`): 431 and close;
 * - `server.maxHeadersCount` (2000): later header lines are silently dropped, so a handshake
 *   header after 2000 junk lines is missing and the handshake fails (400/426), never a 101;
 * - `headersTimeout` (60 s; checked every `connectionsCheckingInterval`, 30 s): 408 and close
 *   for a head that never completes: the deadline of the opening handshake;
 * - `requestTimeout`: Node's default is 300 s but Fastify sets it from its own `requestTimeout`
 *   option, default 0 (off); it does not matter for upgrades, whose head is all there is.
 * After the 101 the socket is detached from the HTTP server: Node's timeouts no longer apply
 * and the limits above take over.
 */

import { constants as bufferConstants } from 'node:buffer'
import { Defaults } from '../protocol/constants.js'

export type BufferedAmountPolicy = 'close' | 'drop'

/**
 * `maxPayload: 0` (as in `ws`) or `Infinity`: no limit of our own. What remains is the largest
 * Buffer this Node can allocate (`buffer.constants.MAX_LENGTH`): a message announced or inflated
 * past it still closes with 1009 instead of failing an allocation. The limits derived from
 * maxPayload then take their floors (those of the default maxPayload), not a multiple of that.
 */
export function resolveMaxPayload (maxPayload: number): { limit: number, derivedFrom: number } {
  if (maxPayload === 0 || maxPayload === Infinity) return { limit: bufferConstants.MAX_LENGTH, derivedFrom: Defaults.maxPayload }
  return { limit: maxPayload, derivedFrom: maxPayload }
}

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
