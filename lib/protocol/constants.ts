/**
 * Protocol constants, named after RFC 6455.
 * Constants are `as const` objects with derived union types (no TS enums).
 */

/** RFC 6455 §1.3: the GUID concatenated with Sec-WebSocket-Key before hashing. */
export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** RFC 6455 §5.2 / §11.8: frame opcodes. */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const
export type Opcode = (typeof Opcode)[keyof typeof Opcode]

/** RFC 6455 §7.4.1 and the IANA "WebSocket Close Code Number Registry". */
export const CloseCode = {
  NormalClosure: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  NoStatusReceived: 1005,
  AbnormalClosure: 1006,
  InvalidFramePayloadData: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014
} as const
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

/** RFC 6455 §5.5: All control frames MUST have a payload length of 125 bytes or less. */
export const MAX_CONTROL_PAYLOAD = 125
/** A close reason fits in a control frame after the 2-byte status code. */
export const MAX_CLOSE_REASON = 123

/** Default limits; every limit has its own error code. */
export const Defaults = {
  maxPayload: 1024 * 1024,
  /** fragments one message may be split into before the peer is failed */
  maxFragments: 16 * 1024,
  closeTimeout: 5000
} as const

/**
 * RFC 6455 §7.4.1 / §7.4.2: whether a status code may appear in a received Close frame.
 * 1000-1003 and 1007-1014 are defined; 1004, 1005, 1006 and 1015 are reserved and MUST NOT be
 * sent; 3000-4999 are for libraries and applications. Everything else is invalid.
 */
export function isValidCloseCode (code: number): boolean {
  if (code >= 1000 && code <= 1014) return code !== 1004 && code !== 1005 && code !== 1006
  return code >= 3000 && code <= 4999
}
