/**
 * The log lines of a WebSocket route's connections, written with the request's logger:
 *
 * - `request completed` (status 101, `responseTime`) once the upgrade succeeded, through
 *   Fastify's own log controller, so a hijacked upgrade completes its request log as every other
 *   request does (and `disableRequestLogging` applies to it);
 * - `websocket closed`, one line per connection, with the route pattern (never the URL: its
 *   query string may carry a token), the code and reason, and who closed it (`closedBy`).
 */
import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from '../connection/connection.js'
import { kCloseInitiator } from '../connection/connection-state.js'
import type { ExpiryReason } from '../connection/heartbeat.js'

/**
 * Who or what closed a connection:
 * - 'client': the peer sent the first Close frame, or ended or reset TCP without one
 * - 'server': the application (`close()`, `terminate()`, a handler error's 1011, a full send buffer)
 * - 'protocol-error': the peer broke the protocol and the server failed the connection
 * - 'shutdown': `app.close()`
 * - a liveness deadline: 'heartbeat', 'idle', 'lifetime', 'incomplete-message' (`socket.expiredBy`)
 * - 'credentials': the deadline set with `socket.expireAt()` passed (close 4401)
 * - 'budget': the route's inbound budget was exceeded (close 1008, `socket.overBudget`)
 */
export type ClosedBy = 'client' | 'server' | 'protocol-error' | 'shutdown' | 'budget' | ExpiryReason

interface LogController {
  requestCompleted (error: Error | null, request: FastifyRequest, reply: FastifyReply): void
}

// Fastify keeps its log controller behind a private symbol: found once by its description
let kLogController: symbol | undefined

function logControllerOf (server: FastifyInstance): LogController | undefined {
  if (kLogController === undefined || !(kLogController in server)) {
    kLogController = undefined
    for (let o: object | null = server; o !== null && kLogController === undefined; o = Object.getPrototypeOf(o)) {
      kLogController = Object.getOwnPropertySymbols(o).find((s) => s.description === 'fastify.logController')
    }
    if (kLogController === undefined) return undefined
  }
  const controller = (server as unknown as Record<symbol, LogController | undefined>)[kLogController]
  return typeof controller?.requestCompleted === 'function' ? controller : undefined
}

/** The upgrade succeeded: complete the request's log as Fastify does for a sent reply. */
export function logUpgradeCompleted (request: FastifyRequest, reply: FastifyReply, statusCode: number): void {
  // the 101 (or HTTP/2's 200) went out on the socket, not through the reply: its status is recorded here
  reply.code(statusCode)
  const controller = logControllerOf(reply.server)
  if (controller !== undefined) {
    controller.requestCompleted(null, request, reply)
    return
  }
  // a Fastify without a log controller: its disableRequestLogging option decides
  const disabled = (reply.server.initialConfig as { disableRequestLogging?: boolean | ((request: FastifyRequest) => boolean) }).disableRequestLogging
  if (disabled === true || (typeof disabled === 'function' && disabled(request))) return
  reply.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
}

/** Who closed `ws`, from what the connection and its socket recorded. */
export function closedBy (ws: WebSocket, socket: Duplex, shuttingDown: boolean): ClosedBy {
  if (ws.expiredBy !== null) return ws.expiredBy
  if (ws.overBudget !== null) return 'budget'
  if (ws.failure !== null) return 'protocol-error'
  const initiator = ws[kCloseInitiator]
  if (initiator === 'peer') return 'client'
  if (shuttingDown) return 'shutdown'
  if (initiator === 'local') return 'server'
  // no Close frame either way: the peer ended or reset TCP, or the server terminated it
  return socket.errored != null || socket.readableEnded ? 'client' : 'server'
}

export interface CloseInfo {
  code: number
  reason: string
  wasClean: boolean
  closedBy: ClosedBy
  durationMs: number
}

/**
 * The `websocket closed` line: info level, one per connection. Built field by field: an object
 * spread here cost more than the rest of the close (measured per handshake).
 */
export function logClosed (log: FastifyBaseLogger, route: string, info: CloseInfo, ws: WebSocket, socket: Duplex): void {
  const { bytesRead, bytesWritten } = socket as Duplex & { bytesRead?: unknown, bytesWritten?: unknown }
  log.info({
    route,
    code: info.code,
    reason: info.reason,
    wasClean: info.wasClean,
    closedBy: info.closedBy,
    durationMs: info.durationMs,
    // a TCP socket's counters, the opening handshake included (an in-memory socket has none)
    bytesRead: typeof bytesRead === 'number' ? bytesRead : undefined,
    bytesWritten: typeof bytesWritten === 'number' ? bytesWritten : undefined,
    error: ws.failure?.code
  }, 'websocket closed')
}
