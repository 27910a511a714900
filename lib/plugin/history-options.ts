/**
 * The plugin option `history` (topic history, resumable streams): its type, defaults and check.
 * A bad value rejects register() with FST_ERR_WS_INVALID_OPTION.
 */
import type { TopicHubHistoryOptions } from '../topics/hub.js'
import { DEFAULT_MAX_BYTES } from '../topics/memory-history.js'
import { checkOptionNames, invalidOption } from './option-errors.js'

/** The plugin option `history`. */
export interface HistoryPluginOptions {
  /** publications kept per topic; default 100 */
  maxMessages?: number
  /** ms a publication is kept; default 300000 (5 minutes); Infinity: no age limit */
  maxAge?: number
  /** which topics keep a history; default: every topic */
  topics?: (topic: string) => boolean
  /** bytes the in-process store keeps across topics; default 64 MiB (the least recently published topics are forgotten first) */
  maxBytes?: number
}

/** Defaults of the plugin option `history`. */
export const HistoryDefaults = { maxMessages: 100, maxAge: 300_000, maxBytes: DEFAULT_MAX_BYTES } as const

function topicFilter (value: unknown, name: string): (topic: string) => boolean {
  if (typeof value !== 'function') throw invalidOption(`option ${name} must be a function (topic) => boolean`)
  return value as (topic: string) => boolean
}

function positiveInteger (value: unknown, name: string, orInfinity = false): number {
  if (orInfinity && value === Infinity) return value
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw invalidOption(`option ${name} must be a positive integer${orInfinity ? ' or Infinity' : ''}`)
  }
  return value
}

export function topicHistory (value: unknown, name: string): TopicHubHistoryOptions | undefined {
  if (value === false) return undefined
  if (value === true) value = {}
  if (value === null || typeof value !== 'object') throw invalidOption(`option ${name} must be true, false or { maxMessages, maxAge, topics, maxBytes }`)
  const given = value as Record<string, unknown>
  checkOptionNames(given, ['maxMessages', 'maxAge', 'topics', 'maxBytes'], name)
  return {
    maxMessages: given.maxMessages === undefined ? HistoryDefaults.maxMessages : positiveInteger(given.maxMessages, `${name}.maxMessages`),
    maxAge: given.maxAge === undefined ? HistoryDefaults.maxAge : positiveInteger(given.maxAge, `${name}.maxAge`, true),
    topics: given.topics === undefined ? undefined : topicFilter(given.topics, `${name}.topics`),
    maxBytes: given.maxBytes === undefined ? HistoryDefaults.maxBytes : positiveInteger(given.maxBytes, `${name}.maxBytes`)
  }
}
