/**
 * Configuration errors: a bad option value, an unknown option name (with a "did you mean"), an
 * option of `@fastify/websocket` (or of the `ws` server under its `options`) that lives
 * elsewhere here, a second registration on one instance. Each is a TypeError (RangeError for an
 * out-of-range number) that carries a stable `code`, thrown when the plugin or route is declared.
 */
import { argumentError } from '../protocol/errors.js'

export const OptionErrorCode = {
  /** a known option with a value of the wrong type or range */
  InvalidOption: 'FST_ERR_WS_INVALID_OPTION',
  /** a name that is no option of the plugin or route */
  UnknownOption: 'FST_ERR_WS_UNKNOWN_OPTION',
  /** a `@fastify/websocket` / `ws` option whose setting lives elsewhere here */
  MovedOption: 'FST_ERR_WS_MOVED_OPTION',
  /** the plugin registered twice on the same Fastify instance */
  AlreadyRegistered: 'FST_ERR_WS_ALREADY_REGISTERED',
  /** the `server` given is already served by another Fastify app's registration */
  ServerInUse: 'FST_ERR_WS_SERVER_IN_USE'
} as const

export type OptionError = (TypeError | RangeError) & { code: string }

export function invalidOption (message: string, kind: 'type' | 'range' = 'type'): OptionError {
  return argumentError(kind, OptionErrorCode.InvalidOption, `fastify-rfc6455: ${message}`)
}

/** Run a check written elsewhere (permessage-deflate): what it throws names the option and has its code. */
export function withOptionName<T> (name: string, check: () => T): T {
  try {
    return check()
  } catch (err) {
    if (err instanceof Error) {
      if ((err as { code?: unknown }).code === undefined) Object.assign(err, { code: OptionErrorCode.InvalidOption })
      if (!err.message.includes(name)) err.message = `fastify-rfc6455: option ${name}: ${err.message}`
    }
    throw err
  }
}

/**
 * Where each `@fastify/websocket` setting goes. Keys are the `ws` server options it passed on
 * through `options: {...}`, and its own top-level options that have no counterpart.
 */
const moved: Readonly<Record<string, string>> = {
  maxPayload: 'the plugin option `maxPayload` (also per route)',
  perMessageDeflate: 'the plugin option `perMessageDeflate` (true or { threshold, level, memLevel, serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits })',
  verifyClient: 'an onRequest or preValidation hook that answers 401/403 (and `allowedOrigins` for Origin checks)',
  handleProtocols: 'the option `protocols`: a list, or (offered, request) => string | undefined',
  clientTracking: 'nothing: `app.websocketConnections` always tracks open connections',
  server: 'the plugin option `server`',
  noServer: 'nothing: upgrades always go through Fastify\'s router',
  path: 'a route: `app.ws(path, handler)` or `{ websocket: true }`',
  host: 'app.listen({ host })',
  port: 'app.listen({ port })',
  backlog: 'app.listen({ backlog })',
  skipUTF8Validation: 'nothing: RFC 6455 §8.1 requires text to be valid UTF-8, it is always checked',
  autoPong: 'nothing: Pings are always answered (RFC 6455 §5.5.2)',
  allowSynchronousEvents: 'nothing: events are delivered as messages are parsed',
  WebSocket: 'nothing: the socket class is this plugin\'s WebSocket',
  connectionOptions: 'nothing: createWebSocketStream does not exist; read messages from the socket',
  handle: 'nothing: an upgrade to a route without a WebSocket handler gets that route\'s HTTP answer and is closed; declare a catch-all with `app.ws(\'/*\', handler)`'
}

/** A `@fastify/websocket` option name that is no option here. */
export function isMovedOption (name: string): boolean {
  return Object.hasOwn(moved, name)
}

/** `{ options: {...} }` or other `@fastify/websocket` names: say where each setting moved. */
export function movedOptionError (names: readonly string[], where: string): OptionError {
  const lines = names.map((name) => `${name} -> ${moved[name] ?? 'nothing: not an option of this plugin'}`)
  const advice = lines.length === 0 ? 'give its settings as plugin options' : `move ${lines.join('; ')}`
  const error = argumentError('type', OptionErrorCode.MovedOption,
    `fastify-rfc6455: ${where} is @fastify/websocket's and is not read here; ${advice}`) as OptionError & { moved: Record<string, string> }
  error.moved = Object.fromEntries(names.map((name) => [name, moved[name] ?? 'nothing']))
  return error
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps), stopping past `limit`. */
function distance (a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1
  let before: number[] = []
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2] + 1)
      current.push(d)
    }
    before = previous
    previous = current
  }
  return previous[b.length]
}

/** The known name closest to `name` (case-insensitive), if close enough to be a typo. */
export function closestName (name: string, known: readonly string[]): string | undefined {
  const wanted = name.toLowerCase()
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of known) {
    const lower = candidate.toLowerCase()
    // a prefix ("heartbeat" for "heartbeatInterval") counts as close
    const d = wanted.length >= 4 && lower.startsWith(wanted) ? 1 : distance(wanted, lower, 2)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

export function unknownOptionError (names: readonly string[], known: readonly string[], where: string): OptionError {
  const described = names.map((name) => {
    const suggestion = closestName(name, known)
    return suggestion === undefined ? name : `${name} (did you mean ${suggestion}?)`
  })
  const error = argumentError('type', OptionErrorCode.UnknownOption,
    `fastify-rfc6455: unknown ${where} ${names.length === 1 ? 'option' : 'options'} ${described.join(', ')}`) as OptionError & { options: string[] }
  error.options = [...names]
  return error
}

/** Refuse names outside `known`: `@fastify/websocket` ones say where they moved. */
export function checkOptionNames (options: object, known: readonly string[], where: string): void {
  const allowed = new Set(known)
  const unknown = Object.keys(options).filter((name) => !allowed.has(name))
  if (unknown.length === 0) return
  const fromWebsocketPlugin = unknown.filter(isMovedOption)
  if (fromWebsocketPlugin.length > 0) throw movedOptionError(fromWebsocketPlugin, `the ${where} ${fromWebsocketPlugin.length === 1 ? 'option' : 'options'} ${fromWebsocketPlugin.join(', ')}`)
  throw unknownOptionError(unknown, known, where)
}
