/**
 * The wire contract's error vocabulary: the codes of refused inbound messages, the shape of one
 * validation issue and of the invalid-message reply the peer receives. Pure: imports nothing, so
 * a browser bundle of the client carries it without Node built-ins.
 */

/** Stable codes of refused inbound messages (close code under the 'close' policy in the comment). */
export const MessageErrorCode = {
  NotJson: 'WS_ERR_MESSAGE_NOT_JSON', // 1007
  Binary: 'WS_ERR_MESSAGE_BINARY', // 1003
  ForbiddenKey: 'WS_ERR_MESSAGE_FORBIDDEN_KEY', // 1008
  Schema: 'WS_ERR_MESSAGE_SCHEMA' // 1008
} as const
export type MessageErrorCode = (typeof MessageErrorCode)[keyof typeof MessageErrorCode]

/** One reason a message did not match, as validators report it. */
export interface MessageIssue {
  /** JSON pointer into the message ('' for the whole message) */
  instancePath: string
  message: string
}

/** A correlation id of a request (the `id` a client put in the message it expects a reply to). */
export type RequestId = number | string

/**
 * What the peer receives under the 'reply' policy. `id` is the refused message's own `id`, when
 * it had one (a string or a number): a client ties the refusal to the request that caused it.
 */
export interface InvalidMessageReply {
  type: 'error'
  code: MessageErrorCode
  message: string
  errors: MessageIssue[]
  id?: RequestId
}

/** The `id` of a decoded message, if it carries one a reply may echo. */
export function requestIdOf (value: unknown): RequestId | undefined {
  if (value === null || typeof value !== 'object') return undefined
  const id = (value as { id?: unknown }).id
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : undefined
}

/** A misuse of the contract or client API: a TypeError with a stable `code`, thrown at the call. */
export class ContractUsageError extends TypeError {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'ContractUsageError'
    this.code = code
  }
}
