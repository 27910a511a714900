/**
 * Every error has a stable string `code` and carries its consequence on the wire.
 */

/** A violation by the peer after the handshake: ends as a Close frame with `closeCode`. */
export class ProtocolError extends Error {
  readonly code: string
  readonly closeCode: number
  constructor (code: string, closeCode: number, message: string) {
    super(message)
    this.name = 'ProtocolError'
    this.code = code
    this.closeCode = closeCode
  }
}

/**
 * The connection under an open WebSocket failed (the peer reset it, a write hit a closed
 * connection...): no Close frame could be exchanged, so it ends with 1006 (RFC 6455 §7.1.5:
 * "If _The WebSocket Connection is Closed_ and no Close control frame was received by the
 * endpoint [...], _The WebSocket Connection Close Code_ is considered to be 1006."). The
 * operating system's error is the `cause`.
 */
export class TransportError extends Error {
  readonly code: 'WS_ERR_CONNECTION_RESET' | 'WS_ERR_TRANSPORT'
  readonly closeCode = 1006
  constructor (cause: Error & { code?: unknown }) {
    const reset = cause.code === 'ECONNRESET' || cause.code === 'EPIPE'
    super(reset ? `the connection was reset by the peer (${String(cause.code)})` : `the connection failed: ${cause.message}`, { cause })
    this.name = 'TransportError'
    this.code = reset ? 'WS_ERR_CONNECTION_RESET' : 'WS_ERR_TRANSPORT'
  }
}

/** A refused opening handshake: ends as an HTTP response with `statusCode` and `headers`. */
export class HandshakeError extends Error {
  readonly code: string
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>
  constructor (code: string, statusCode: number, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'HandshakeError'
    this.code = code
    this.statusCode = statusCode
    this.headers = headers
  }
}

/** Misuse of the API by the application (bad argument, wrong state). */
export class WebSocketUsageError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'WebSocketUsageError'
    this.code = code
  }
}

/** A bad argument to the API: a RangeError or TypeError that also carries a stable `code`. */
export function argumentError (kind: 'range' | 'type', code: string, message: string): (RangeError | TypeError) & { code: string } {
  const error = (kind === 'range' ? new RangeError(message) : new TypeError(message)) as (RangeError | TypeError) & { code: string }
  error.code = code
  return error
}

/** Stable error codes of peer violations (close code in the comment). */
export const ErrorCode = {
  UnmaskedFrame: 'WS_ERR_UNMASKED_FRAME', // 1002
  MaskedFrame: 'WS_ERR_MASKED_FRAME', // 1002 (client role)
  ReservedBits: 'WS_ERR_RESERVED_BITS', // 1002
  ReservedOpcode: 'WS_ERR_RESERVED_OPCODE', // 1002
  FragmentedControl: 'WS_ERR_FRAGMENTED_CONTROL_FRAME', // 1002
  ControlTooLong: 'WS_ERR_CONTROL_FRAME_TOO_LONG', // 1002
  UnexpectedContinuation: 'WS_ERR_UNEXPECTED_CONTINUATION', // 1002
  ExpectedContinuation: 'WS_ERR_EXPECTED_CONTINUATION', // 1002
  LengthTooLarge: 'WS_ERR_LENGTH_MSB_SET', // 1002
  InvalidUtf8: 'WS_ERR_INVALID_UTF8', // 1007
  MessageTooBig: 'WS_ERR_MESSAGE_TOO_BIG', // 1009
  TooManyFragments: 'WS_ERR_TOO_MANY_FRAGMENTS', // 1009
  InvalidCloseCode: 'WS_ERR_INVALID_CLOSE_CODE', // 1002
  InvalidClosePayload: 'WS_ERR_INVALID_CLOSE_PAYLOAD', // 1002 (1-byte close payload)
  InvalidCloseReason: 'WS_ERR_INVALID_CLOSE_REASON' // 1007
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]
