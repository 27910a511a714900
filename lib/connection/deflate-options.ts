/** permessage-deflate options of the plugin and of a route, their defaults and their checks. */
import zlib from 'node:zlib'
import {
  checkNegotiationOptions, type DeflateNegotiationOptions, MAX_WINDOW_BITS
} from '../protocol/permessage-deflate.js'
import { argumentError } from '../protocol/errors.js'

/** Options of the plugin / route (`perMessageDeflate: true | {...}`). */
export interface PerMessageDeflateOptions extends DeflateNegotiationOptions {
  /** messages smaller than this many bytes are sent uncompressed; default 1024 */
  threshold?: number
  /** zlib compression level, -1 (default, 6) or 0..9 */
  level?: number
  /** zlib memLevel 1..9 (deflate memory is 2^(memLevel+9) + 2^(windowBits+2) bytes); default 8 */
  memLevel?: number
}

export interface ResolvedDeflateOptions extends Required<DeflateNegotiationOptions> {
  threshold: number
  level: number
  memLevel: number
}

/** Default when the plugin is given `perMessageDeflate: true`. */
export const DEFLATE_DEFAULTS: ResolvedDeflateOptions = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: MAX_WINDOW_BITS,
  clientMaxWindowBits: MAX_WINDOW_BITS,
  threshold: 1024,
  level: zlib.constants.Z_DEFAULT_COMPRESSION,
  memLevel: 8
}

function intIn (name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw argumentError('range', 'FST_ERR_WS_INVALID_OPTION', `fastify-rfc6455: perMessageDeflate.${name} must be an integer from ${min} to ${max}`)
  }
  return value
}

/**
 * Resolve `perMessageDeflate` (false/undefined = off, true = defaults, object = overrides of
 * `base`). A route's object is merged over the plugin's settings.
 */
export function resolveDeflateOptions (value: boolean | PerMessageDeflateOptions | undefined, base: ResolvedDeflateOptions | null): ResolvedDeflateOptions | null {
  if (value === undefined) return base
  if (value === false) return null
  if (value === true) return base ?? DEFLATE_DEFAULTS
  if (value === null || typeof value !== 'object') {
    throw argumentError('type', 'FST_ERR_WS_INVALID_OPTION', 'fastify-rfc6455: option perMessageDeflate must be a boolean or an object')
  }
  const from = base ?? DEFLATE_DEFAULTS
  const negotiation = checkNegotiationOptions({
    serverNoContextTakeover: value.serverNoContextTakeover ?? from.serverNoContextTakeover,
    clientNoContextTakeover: value.clientNoContextTakeover ?? from.clientNoContextTakeover,
    serverMaxWindowBits: value.serverMaxWindowBits ?? from.serverMaxWindowBits,
    clientMaxWindowBits: value.clientMaxWindowBits ?? from.clientMaxWindowBits
  })
  return {
    ...negotiation,
    threshold: intIn('threshold', value.threshold, 0, Number.MAX_SAFE_INTEGER, from.threshold),
    level: intIn('level', value.level, -1, 9, from.level),
    memLevel: intIn('memLevel', value.memLevel, 1, 9, from.memLevel)
  }
}
