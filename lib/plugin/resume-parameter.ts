/**
 * Topic history in the Fastify layer: the upgrade request's `resume` query parameter, read once
 * per connection when the registration keeps history (see ../topics/envelope.ts for its format).
 */
import type { FastifyRequest } from 'fastify'
import { kResumePositions, type WebSocket } from '../connection/connection.js'
import { parseResumeParameter } from '../topics/envelope.js'
import { RESUME_PARAMETER } from '../topics/history.js'
import { MAX_TOPIC_LENGTH } from '../topics/hub.js'

/**
 * The upgrade's `resume` query parameter (topic history): the positions it gives are kept on the
 * socket for its subscriptions. A malformed one is ignored (logged at debug): it costs the client
 * its replay, never its connection.
 */
export function takeResumeParameter (socket: WebSocket, request: FastifyRequest): void {
  const url = request.raw.url ?? ''
  const query = url.indexOf('?')
  if (query === -1 || !url.includes(RESUME_PARAMETER, query)) return
  let text: string | null
  try {
    text = new URLSearchParams(url.slice(query + 1)).get(RESUME_PARAMETER)
  } catch {
    text = null
  }
  if (text === null) return
  const positions = parseResumeParameter(text, MAX_TOPIC_LENGTH)
  if (typeof positions === 'string') {
    request.log.debug({ reason: positions }, 'websocket resume parameter ignored')
    return
  }
  socket[kResumePositions] = positions
}
