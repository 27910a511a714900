/**
 * The metrics of a registration's WebSocket routes, counted as connections open and close and
 * messages pass (a few additions per message, no allocation), and read as a snapshot with
 * `app.websocketMetrics()`: per route pattern and in total.
 */
import type { Duplex } from 'node:stream'
import type { ConnectionMeter, LimitReason } from '../connection/meter.js'
import { channels } from './diagnostics.js'

/** The counters of one route (or the total over all routes). */
export interface WebSocketRouteMetrics {
  /** connections open now */
  open: number
  opened: number
  closed: number
  messagesIn: number
  messagesOut: number
  /** inbound payload bytes after inflation; outbound: bytes (binary) or UTF-16 units (text strings) */
  payloadBytesIn: number
  payloadBytesOut: number
  /** bytes on the wire (TCP counters, handshakes included) of open and closed connections */
  bytesIn: number
  bytesOut: number
  /** closed connections per close code ('1000': 12, '1006': 1...) */
  closeCodes: Record<string, number>
  /** closed connections per cause ('client', 'server', 'heartbeat', 'credentials', 'budget'...) */
  closedBy: Record<string, number>
  /** messages dropped by a policy: outbound over maxBufferedAmount, inbound over budget */
  drops: number
  /** upgrades refused before the 101, per error code */
  refused: Record<string, number>
  /** inbound compressed messages: bytes on the wire / bytes after inflation (null: none) */
  compressionRatio: number | null
}

export interface WebSocketMetricsSnapshot {
  total: WebSocketRouteMetrics
  routes: Record<string, WebSocketRouteMetrics>
}

/** A route's counters, and the wire bytes of its closed connections. */
class RouteCounters {
  open = 0
  opened = 0
  closed = 0
  messagesIn = 0
  messagesOut = 0
  payloadBytesIn = 0
  payloadBytesOut = 0
  closedBytesIn = 0
  closedBytesOut = 0
  closeCodes: Record<string, number> = {}
  closedBy: Record<string, number> = {}
  drops = 0
  refused: Record<string, number> = {}
  compressedWire = 0
  compressedInflated = 0
  /** the sockets of the open connections, for their wire bytes */
  readonly sockets = new Set<Duplex>()
}

/** What a connection of a route counts itself (for the close channel's payload). */
export interface ConnectionCounts {
  messagesIn: number
  messagesOut: number
}

function bump (record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1
}

function wireBytes (socket: Duplex): [number, number] {
  const { bytesRead, bytesWritten } = socket as Duplex & { bytesRead?: unknown, bytesWritten?: unknown }
  return [typeof bytesRead === 'number' ? bytesRead : 0, typeof bytesWritten === 'number' ? bytesWritten : 0]
}

/** The metrics of one plugin registration. */
export class WebSocketMetrics {
  private readonly routes = new Map<string, RouteCounters>()

  route (route: string): RouteCounters {
    let counters = this.routes.get(route)
    if (counters === undefined) this.routes.set(route, counters = new RouteCounters())
    return counters
  }

  refused (route: string, code: string): void {
    bump(this.route(route).refused, code)
  }

  opened (route: string, socket: Duplex): void {
    const c = this.route(route)
    c.open++
    c.opened++
    c.sockets.add(socket)
  }

  closed (route: string, socket: Duplex, code: number, closedBy: string): void {
    const c = this.route(route)
    if (!c.sockets.delete(socket)) return
    c.open--
    c.closed++
    const [read, written] = wireBytes(socket)
    c.closedBytesIn += read
    c.closedBytesOut += written
    bump(c.closeCodes, String(code))
    bump(c.closedBy, closedBy)
  }

  /**
   * The meter a route's connections report to: counters, and the message channels when they
   * have subscribers. `counts` finds a connection's own counters.
   */
  meter (route: string, counts: (socket: object) => ConnectionCounts): ConnectionMeter {
    const c = this.route(route)
    return {
      received (socket, size, wireSize, binary, compressed) {
        c.messagesIn++
        c.payloadBytesIn += size
        counts(socket).messagesIn++
        if (compressed) { c.compressedWire += wireSize; c.compressedInflated += size }
        if (channels.messageReceived.hasSubscribers) {
          channels.messageReceived.publish({ socket, route, size, wireSize, binary, compressed })
        }
      },
      sent (socket, size, binary) {
        c.messagesOut++
        c.payloadBytesOut += size
        counts(socket).messagesOut++
        if (channels.messageSent.hasSubscribers) channels.messageSent.publish({ socket, route, size, binary })
      },
      overLimit (socket, size, reason: LimitReason, action) {
        if (action === 'drop') c.drops++
        if (channels.backpressure.hasSubscribers) channels.backpressure.publish({ socket, route, size, reason, action })
      }
    }
  }

  snapshot (): WebSocketMetricsSnapshot {
    const routes: Record<string, WebSocketRouteMetrics> = {}
    const total = emptyMetrics()
    let wire = 0
    let inflated = 0
    for (const [route, c] of this.routes) {
      let bytesIn = c.closedBytesIn
      let bytesOut = c.closedBytesOut
      for (const socket of c.sockets) {
        const [read, written] = wireBytes(socket)
        bytesIn += read
        bytesOut += written
      }
      const m: WebSocketRouteMetrics = {
        open: c.open,
        opened: c.opened,
        closed: c.closed,
        messagesIn: c.messagesIn,
        messagesOut: c.messagesOut,
        payloadBytesIn: c.payloadBytesIn,
        payloadBytesOut: c.payloadBytesOut,
        bytesIn,
        bytesOut,
        closeCodes: { ...c.closeCodes },
        closedBy: { ...c.closedBy },
        drops: c.drops,
        refused: { ...c.refused },
        compressionRatio: c.compressedInflated === 0 ? null : c.compressedWire / c.compressedInflated
      }
      routes[route] = m
      wire += c.compressedWire
      inflated += c.compressedInflated
      addInto(total, m)
    }
    total.compressionRatio = inflated === 0 ? null : wire / inflated
    return { total, routes }
  }
}

function emptyMetrics (): WebSocketRouteMetrics {
  return {
    open: 0, opened: 0, closed: 0, messagesIn: 0, messagesOut: 0, payloadBytesIn: 0, payloadBytesOut: 0,
    bytesIn: 0, bytesOut: 0, closeCodes: {}, closedBy: {}, drops: 0, refused: {}, compressionRatio: null
  }
}

function addInto (total: WebSocketRouteMetrics, m: WebSocketRouteMetrics): void {
  total.open += m.open
  total.opened += m.opened
  total.closed += m.closed
  total.messagesIn += m.messagesIn
  total.messagesOut += m.messagesOut
  total.payloadBytesIn += m.payloadBytesIn
  total.payloadBytesOut += m.payloadBytesOut
  total.bytesIn += m.bytesIn
  total.bytesOut += m.bytesOut
  total.drops += m.drops
  for (const [k, v] of Object.entries(m.closeCodes)) total.closeCodes[k] = (total.closeCodes[k] ?? 0) + v
  for (const [k, v] of Object.entries(m.closedBy)) total.closedBy[k] = (total.closedBy[k] ?? 0) + v
  for (const [k, v] of Object.entries(m.refused)) total.refused[k] = (total.refused[k] ?? 0) + v
}
