/**
 * The plugin's `node:diagnostics_channel` channels. Each publish is guarded by `hasSubscribers`,
 * so without a subscriber no payload object is built: the cost is one property read.
 *
 * Channels and payloads (documented in the README's Observability section):
 * - `fastify-rfc6455:upgrade:refused` { request, route, statusCode, code }
 * - `fastify-rfc6455:open`            { socket, request, route, protocol, extensions }
 * - `fastify-rfc6455:close`           { socket, route, code, reason, wasClean, closedBy, durationMs,
 *                                       bytesRead, bytesWritten, messagesIn, messagesOut }
 * - `fastify-rfc6455:message:received` { socket, route, size, wireSize, binary, compressed }
 * - `fastify-rfc6455:message:sent`    { socket, route, size, binary }
 * - `fastify-rfc6455:backpressure`    { socket, route, size, reason, action }
 * - `fastify-rfc6455:heartbeat:timeout` { socket, route }
 * - `fastify-rfc6455:error`           { socket, route, error }
 */
import diagnosticsChannel from 'node:diagnostics_channel'

export const channels = {
  upgradeRefused: diagnosticsChannel.channel('fastify-rfc6455:upgrade:refused'),
  open: diagnosticsChannel.channel('fastify-rfc6455:open'),
  close: diagnosticsChannel.channel('fastify-rfc6455:close'),
  messageReceived: diagnosticsChannel.channel('fastify-rfc6455:message:received'),
  messageSent: diagnosticsChannel.channel('fastify-rfc6455:message:sent'),
  backpressure: diagnosticsChannel.channel('fastify-rfc6455:backpressure'),
  heartbeatTimeout: diagnosticsChannel.channel('fastify-rfc6455:heartbeat:timeout'),
  error: diagnosticsChannel.channel('fastify-rfc6455:error')
} as const
