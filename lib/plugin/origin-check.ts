/**
 * The `allowedOrigins` option: a list of origins (RFC 6454 §7.3: the Origin header is one
 * serialized origin, "null" for opaque ones), `'same-origin'` (the request's own scheme, host and
 * port, §4), or a function; turned into one check per route, run before the upgrade.
 */
import type { FastifyRequest } from 'fastify'
import type { OriginCheck } from './options.js'
import { invalidOption } from './option-errors.js'

export function isStringList (value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string')
}

function originCheck (value: unknown, name: string): OriginCheck {
  if (typeof value === 'function') return value as OriginCheck
  if (!isStringList(value)) throw invalidOption(`option ${name} must be an array of strings or a function`)
  const allowed = new Set(value.map((v) => v.toLowerCase()))
  // RFC 6454 §7.3: the Origin header is one serialized origin ("null" for opaque origins)
  return (origin) => origin === undefined || allowed.has(origin.toLowerCase())
}

/** RFC 6454 §4: the origin of a request to `host` (the Host header) is its scheme, host and port. */
function sameOrigin (origin: string, host: string | undefined): boolean {
  if (host === undefined) return false
  let url: URL
  try { url = new URL(origin) } catch { return false }
  // the Host header carries no scheme; the default port of the Origin's scheme may be implicit
  const defaultPort = url.protocol === 'https:' ? ':443' : url.protocol === 'http:' ? ':80' : ''
  const expected = host.toLowerCase()
  return url.host === expected || (url.port === '' && url.host + defaultPort === expected)
}

function authorityOf (request: FastifyRequest): string | undefined {
  const authority = request.headers[':authority']
  return typeof authority === 'string' ? authority : undefined
}

/** The check of `allowedOrigins` (FST_ERR_WS_INVALID_OPTION for anything but a list of strings or a function). */
export function originCheckOf (value: unknown, name: string): OriginCheck {
  if (value === 'same-origin') value = ['same-origin']
  if (!isStringList(value) || !value.includes('same-origin')) return originCheck(value, name)
  const others = originCheck(value.filter((v) => v !== 'same-origin'), name)
  // HTTP/2 (RFC 8441): the authority is the :authority pseudo-header (RFC 9113 §8.3.1)
  return (origin, request) => origin === undefined || sameOrigin(origin, request.headers.host ?? authorityOf(request)) || others(origin, request)
}
