/**
 * Plugin and route options, with their defaults. Route options override plugin options.
 */
import type { FastifyRequest } from 'fastify'
import { Defaults } from '../protocol/constants.js'

export type ProtocolSelector = (offered: string[], request: FastifyRequest) => string | undefined

export interface WebSocketRouteOptions {
  /** largest message accepted, in bytes (after reassembly); default 1 MiB */
  maxPayload?: number
  /** most fragments one message may arrive in; default 16384 */
  maxFragments?: number
  /** ms to wait for the peer's answer to our Close before destroying the socket; default 5000 */
  closeTimeout?: number
  /**
   * Subprotocols this route speaks, or a function that picks one of the client's offers.
   * With a list the first client-offered one (client preference) that the route supports wins.
   * Default: none (the 101 never carries Sec-WebSocket-Protocol).
   */
  protocols?: readonly string[] | ProtocolSelector
}

export interface WebSocketPluginOptions extends WebSocketRouteOptions {}

export interface ResolvedOptions {
  maxPayload: number
  maxFragments: number
  closeTimeout: number
  protocols: readonly string[] | ProtocolSelector
}

function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`fastify-rfc6455: option ${name} must be a non-negative integer`)
  }
  return value
}

export function resolveOptions (route: WebSocketRouteOptions | undefined, base: ResolvedOptions | undefined): ResolvedOptions {
  const fallback: ResolvedOptions = base ?? {
    maxPayload: Defaults.maxPayload,
    maxFragments: Defaults.maxFragments,
    closeTimeout: Defaults.closeTimeout,
    protocols: []
  }
  const protocols = route?.protocols ?? fallback.protocols
  if (!Array.isArray(protocols) && typeof protocols !== 'function') {
    throw new TypeError('fastify-rfc6455: option protocols must be an array of strings or a function')
  }
  return {
    maxPayload: positiveInteger('maxPayload', route?.maxPayload, fallback.maxPayload),
    maxFragments: positiveInteger('maxFragments', route?.maxFragments, fallback.maxFragments),
    closeTimeout: positiveInteger('closeTimeout', route?.closeTimeout, fallback.closeTimeout),
    protocols
  }
}
