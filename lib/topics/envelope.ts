/**
 * The wire of resumable streams (./history.ts, last comment): the texts a subscriber of a topic
 * with history receives, and the `resume` query parameter a client sends at the upgrade. Pure:
 * no I/O, no sockets.
 */
import { argumentError } from '../protocol/errors.js'
import { type HistoryPosition, type HistoryRead, PUBLICATION_TYPE, type StreamPublication, SUBSCRIBED_TYPE } from './history.js'

/** Longest epoch accepted from a client (the contract's bound on an epoch). */
export const MAX_EPOCH_LENGTH = 64
/** Most topics one `resume` parameter may name. */
export const MAX_RESUME_TOPICS = 100

/**
 * `{"type":"publication","topic":T,"epoch":E,"offset":N,"data":<json>}`, by concatenation: the
 * publication's JSON text is never parsed or serialized again.
 */
export function publicationEnvelope (publication: StreamPublication): string {
  return `{"type":"${PUBLICATION_TYPE}","topic":${JSON.stringify(publication.topic)},"epoch":${JSON.stringify(publication.epoch)},"offset":${publication.offset},"data":${publication.data}}`
}

/** What answers a subscription: recovered K (0 for a fresh one), or false with the reason. */
export function subscribedMessage (topic: string, answer: HistoryPosition | HistoryRead): string {
  const recovered = 'ok' in answer
    ? (answer.ok ? answer.entries.length : false)
    : 0
  const message: Record<string, unknown> = { type: SUBSCRIBED_TYPE, topic, epoch: answer.epoch, offset: answer.offset, recovered }
  if ('ok' in answer && !answer.ok) message.reason = answer.reason
  return JSON.stringify(message)
}

function isOffset (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isEpoch (value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_EPOCH_LENGTH
}

/**
 * The `resume` query parameter: the JSON text of `{ [topic]: [epoch, offset] }`. Returns the
 * positions, or a string saying why the parameter is ignored (malformed, too many topics): a
 * client's bad parameter never fails the connection, it only costs the client its replay.
 */
export function parseResumeParameter (text: string, maxTopicLength: number): Map<string, HistoryPosition> | string {
  // the bound on the text before parsing: MAX_RESUME_TOPICS entries of bounded size
  if (text.length > MAX_RESUME_TOPICS * (maxTopicLength + MAX_EPOCH_LENGTH + 64)) return 'too long'
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return 'not JSON'
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'not an object'
  const topics = Object.keys(parsed)
  if (topics.length > MAX_RESUME_TOPICS) return `more than ${MAX_RESUME_TOPICS} topics`
  const positions = new Map<string, HistoryPosition>()
  for (const topic of topics) {
    const value = (parsed as Record<string, unknown>)[topic]
    if (topic.length === 0 || topic.length > maxTopicLength) return 'a topic name out of bounds'
    if (!Array.isArray(value) || value.length !== 2 || !isEpoch(value[0]) || !isOffset(value[1])) {
      return `the position of a topic is not [epoch, offset] (epoch: 1 to ${MAX_EPOCH_LENGTH} characters, offset: a non-negative integer)`
    }
    positions.set(topic, { epoch: value[0], offset: value[1] })
  }
  return positions
}

/** `socket.subscribe(topic, { since })`: a position, checked at the call. */
export function checkSince (since: unknown): HistoryPosition {
  const given = since as Partial<HistoryPosition> | null
  if (given === null || typeof given !== 'object' || !isEpoch(given.epoch) || !isOffset(given.offset)) {
    throw argumentError('type', 'FST_ERR_WS_INVALID_SINCE',
      `subscribe() options: since must be { epoch, offset } (epoch: a string of 1 to ${MAX_EPOCH_LENGTH} characters, offset: a non-negative integer)`)
  }
  return { epoch: given.epoch, offset: given.offset }
}
