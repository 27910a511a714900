/** The client's errors: a request that got no reply, or a refusal the server tied to it. */
import type { MessageIssue } from '../contract/errors.js'

export const ClientErrorCode = {
  /** no reply within the request's timeout */
  Timeout: 'WS_ERR_CLIENT_TIMEOUT',
  /** the connection the request went out on closed before its reply */
  Disconnected: 'WS_ERR_CLIENT_DISCONNECTED',
  /** the client is closed for good (close(), 1008, 4xxx, or retries exhausted) */
  Closed: 'WS_ERR_CLIENT_CLOSED',
  /** the outgoing queue is full while disconnected */
  QueueFull: 'WS_ERR_CLIENT_QUEUE_FULL'
} as const
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode]

/** A failed request: a client code above, or the server's refusal code (WS_ERR_MESSAGE_*) with its issues. */
export class RequestError extends Error {
  readonly code: string
  readonly errors: MessageIssue[]
  constructor (code: string, message: string, errors: MessageIssue[] = []) {
    super(message)
    this.name = 'RequestError'
    this.code = code
    this.errors = errors
  }
}
