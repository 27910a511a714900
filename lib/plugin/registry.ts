/**
 * Open connections, per route, and the open/close hooks other plugins (metrics, auth expiry)
 * add with `fastify.addWebSocketHook()`. Hooks follow encapsulation: a hook added in a context
 * applies to the WebSocket routes of that context and its children.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from '../connection/connection.js'
import { argumentError } from '../protocol/errors.js'
import type { ClosedBy } from './connection-log.js'
import { kWebSocketHooks } from './symbols.js'

export interface WebSocketCloseInfo {
  code: number
  reason: string
  wasClean: boolean
  /** who closed: 'client', 'server', 'protocol-error', 'shutdown' or a liveness deadline */
  closedBy: ClosedBy
  /** ms from the 101 to the close */
  durationMs: number
}

export type OnOpenHook = (this: FastifyInstance, socket: WebSocket, request: FastifyRequest) => void
export type OnCloseHook = (this: FastifyInstance, socket: WebSocket, request: FastifyRequest, info: WebSocketCloseInfo) => void

export interface WebSocketHookMap {
  onOpen: OnOpenHook
  onClose: OnCloseHook
}
export type WebSocketHookName = keyof WebSocketHookMap

export interface HookLists { onOpen: OnOpenHook[], onClose: OnCloseHook[] }
type WithHooks = FastifyInstance & { [kWebSocketHooks]?: HookLists }

/** The `addWebSocketHook(name, hook)` decorator. */
export function addWebSocketHook<Name extends WebSocketHookName> (this: FastifyInstance, name: Name, hook: WebSocketHookMap[Name]): FastifyInstance {
  if (name !== 'onOpen' && name !== 'onClose') {
    throw argumentError('type', 'FST_ERR_WS_UNKNOWN_HOOK', `fastify-rfc6455: unknown WebSocket hook ${String(name)} (onOpen, onClose)`)
  }
  if (typeof hook !== 'function') throw argumentError('type', 'FST_ERR_WS_INVALID_HOOK', 'fastify-rfc6455: a WebSocket hook must be a function')
  const self = this as WithHooks
  // own list per context: a child's hooks never leak into its parent
  if (!Object.hasOwn(self, kWebSocketHooks)) self[kWebSocketHooks] = { onOpen: [], onClose: [] }
  ;(self[kWebSocketHooks]![name] as Array<WebSocketHookMap[Name]>).push(hook)
  return this
}

/** The hooks that apply to a route declared in `instance`: its ancestors' first. */
export function collectHooks (instance: FastifyInstance): HookLists | undefined {
  const chain: HookLists[] = []
  for (let o: object | null = instance; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    if (Object.hasOwn(o, kWebSocketHooks)) chain.push((o as WithHooks)[kWebSocketHooks]!)
  }
  if (chain.length === 0) return undefined
  if (chain.length === 1) return chain[0]
  chain.reverse()
  return { onOpen: chain.flatMap((h) => h.onOpen), onClose: chain.flatMap((h) => h.onClose) }
}

/** Open connections of one plugin registration: all of them, and per route URL (prefix included). */
export interface Connections {
  connections: Set<WebSocket>
  byRoute: Map<string, Set<WebSocket>>
}

export function addConnection (registry: Connections, route: string, socket: WebSocket): void {
  registry.connections.add(socket)
  let set = registry.byRoute.get(route)
  if (set === undefined) registry.byRoute.set(route, set = new Set())
  set.add(socket)
}

export function deleteConnection (registry: Connections, route: string, socket: WebSocket): void {
  registry.connections.delete(socket)
  registry.byRoute.get(route)?.delete(socket)
}
