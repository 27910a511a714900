/**
 * permessage-deflate (RFC 7692) negotiation: pure functions, no zlib here. The server side
 * (offers in, response out) and, for the test client of injectWS(), the client side (offer out,
 * response checked).
 *
 * The client's Sec-WebSocket-Extensions header may hold several offers, in its order of
 * preference; the server accepts the first acceptable one (RFC 7692 §5: "the server ... accepts
 * one or more of them or declines all of them") and answers with one response element.
 *
 * Parameters (RFC 7692 §7.1):
 *   server_no_context_takeover  (no value)    the server resets its LZ77 window after each message
 *   client_no_context_takeover  (no value)    the client resets its window after each message
 *   server_max_window_bits=8..15              the largest window the server compresses with
 *   client_max_window_bits[=8..15]            the client can be told a window; value optional
 */
import { CloseCode } from './constants.js'
import { argumentError, ProtocolError } from './errors.js'
import { type ExtensionOffer, parseExtensions } from './header-tokens.js'

export const PERMESSAGE_DEFLATE = 'permessage-deflate'

/** RFC 7692 §7.1.2: window bits are "between 8 to 15, inclusive". */
export const MIN_WINDOW_BITS = 8
export const MAX_WINDOW_BITS = 15
/**
 * zlib turns a raw deflate window of 8 bits into 9 (zlib 1.2.9+), so the server can not honour a
 * window of 256 bytes for what it compresses. RFC 7692 §7.1.2.1: "A server declines an extension
 * negotiation offer with this parameter if the server doesn't support it."
 */
export const MIN_SERVER_WINDOW_BITS = 9

/** Errors of compressed messages (with the close code each one reaches the wire with). */
export const DeflateErrorCode = {
  /** inflated past maxPayload: 1009 */
  MessageTooBig: 'WS_ERR_INFLATED_MESSAGE_TOO_BIG',
  /** the payload is not valid DEFLATE data: 1007 */
  InvalidCompressedData: 'WS_ERR_INVALID_COMPRESSED_DATA',
  /** the inflated text is not UTF-8: 1007 */
  InvalidUtf8: 'WS_ERR_INVALID_UTF8'
} as const
export const DeflateCloseCode = {
  [DeflateErrorCode.MessageTooBig]: CloseCode.MessageTooBig,
  [DeflateErrorCode.InvalidCompressedData]: CloseCode.InvalidFramePayloadData,
  [DeflateErrorCode.InvalidUtf8]: CloseCode.InvalidFramePayloadData
} as const

/** What the server is willing to do (all optional; defaults: context takeover both ways, 15 bits). */
export interface DeflateNegotiationOptions {
  /** reset our compression context after each message (saves the window between messages) */
  serverNoContextTakeover?: boolean
  /** ask the client to reset its context after each message */
  clientNoContextTakeover?: boolean
  /** largest window we compress with, 9..15 (8 is not supported by zlib for raw deflate) */
  serverMaxWindowBits?: number
  /** window the client is asked to compress with, 8..15 (only when it offers client_max_window_bits) */
  clientMaxWindowBits?: number
}

/** The parameters in force on a connection once an offer was accepted. */
export interface DeflateParams {
  serverNoContextTakeover: boolean
  clientNoContextTakeover: boolean
  /** window bits we compress with */
  serverMaxWindowBits: number
  /** window bits the client compresses with, so the window our inflater needs */
  clientMaxWindowBits: number
}

export interface DeflateAgreement {
  params: DeflateParams
  /** the Sec-WebSocket-Extensions value for the 101 response */
  response: string
}

/** An offer's parameters once validated; `null` window bits = absent, `true` = present without value. */
export interface DeflateOffer {
  serverNoContextTakeover: boolean
  clientNoContextTakeover: boolean
  serverMaxWindowBits: number | null
  clientMaxWindowBits: number | true | null
}

/** §7.1.2.1 / §7.1.2.2: "a decimal integer value without leading zeroes between 8 to 15, inclusive" */
function windowBits (value: string | true): number | null {
  if (value === true) return null
  if (value.length === 1 && value >= '8' && value <= '9') return value.charCodeAt(0) - 0x30
  if (value.length === 2 && value[0] === '1' && value[1] >= '0' && value[1] <= '5') return 10 + value.charCodeAt(1) - 0x30
  return null
}

/**
 * Validate one permessage-deflate offer. Returns null when the server MUST decline it.
 * RFC 7692 §7: "A server MUST decline an extension negotiation offer for this extension if any of
 * the following conditions are met: the negotiation offer contains an extension parameter not
 * defined for use in an offer; the negotiation offer contains an extension parameter with an
 * invalid value; the negotiation offer contains multiple extension parameters with the same name".
 */
export function parseDeflateOffer (offer: ExtensionOffer): DeflateOffer | null {
  if (offer.name !== PERMESSAGE_DEFLATE || offer.duplicate) return null
  const out: DeflateOffer = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: null, clientMaxWindowBits: null }
  for (const [name, value] of offer.params) {
    switch (name) {
      case 'server_no_context_takeover':
        // §7.1.1.1: "This extension parameter has no value."
        if (value !== true) return null
        out.serverNoContextTakeover = true
        break
      case 'client_no_context_takeover':
        // §7.1.1.2: "This extension parameter has no value."
        if (value !== true) return null
        out.clientNoContextTakeover = true
        break
      case 'server_max_window_bits': {
        // §7.1.2.1: in an offer it always has a value of 8..15
        const bits = windowBits(value)
        if (bits === null) return null
        out.serverMaxWindowBits = bits
        break
      }
      case 'client_max_window_bits': {
        // §7.1.2.2: "This parameter has no value or a decimal integer value without leading
        // zeroes between 8 to 15 inclusive"
        if (value === true) {
          out.clientMaxWindowBits = true
        } else {
          const bits = windowBits(value)
          if (bits === null) return null
          out.clientMaxWindowBits = bits
        }
        break
      }
      default:
        return null
    }
  }
  return out
}

function checkBits (name: string, value: number | undefined, min: number): number {
  if (value === undefined) return MAX_WINDOW_BITS
  if (!Number.isInteger(value) || value < min || value > MAX_WINDOW_BITS) {
    throw argumentError('range', 'FST_ERR_WS_INVALID_OPTION', `permessage-deflate ${name} must be an integer from ${min} to ${MAX_WINDOW_BITS}`)
  }
  return value
}

/** Check the server's negotiation options (throws RangeError on a bad one). */
export function checkNegotiationOptions (options: DeflateNegotiationOptions): Required<DeflateNegotiationOptions> {
  return {
    serverNoContextTakeover: options.serverNoContextTakeover === true,
    clientNoContextTakeover: options.clientNoContextTakeover === true,
    serverMaxWindowBits: checkBits('serverMaxWindowBits', options.serverMaxWindowBits, MIN_SERVER_WINDOW_BITS),
    clientMaxWindowBits: checkBits('clientMaxWindowBits', options.clientMaxWindowBits, MIN_WINDOW_BITS)
  }
}

/**
 * Accept one validated offer under the server's options, or decline it (null).
 */
export function acceptOffer (offer: DeflateOffer, options: DeflateNegotiationOptions = {}): DeflateAgreement | null {
  const opts = checkNegotiationOptions(options)
  let response = PERMESSAGE_DEFLATE

  // §7.1.1.1: "A server accepts an extension negotiation offer that includes the
  // 'server_no_context_takeover' extension parameter by including it in the response"; a server
  // may include it without being asked (it only promises the client more).
  const serverNoContextTakeover = offer.serverNoContextTakeover || opts.serverNoContextTakeover
  if (serverNoContextTakeover) response += '; server_no_context_takeover'

  // §7.1.1.2: the server MAY include 'client_no_context_takeover' in the response, and the
  // client then MUST NOT use context takeover. A client that offered it announced it resets
  // anyway, so echoing it costs nothing and lets us reset our inflater.
  const clientNoContextTakeover = offer.clientNoContextTakeover || opts.clientNoContextTakeover
  if (clientNoContextTakeover) response += '; client_no_context_takeover'

  // §7.1.2.1: "A server accepts an extension negotiation offer with this parameter by including
  // the 'server_max_window_bits' extension parameter in the extension negotiation response ...
  // with the same or smaller value as the offer." Without the parameter in the offer we still
  // may compress with a smaller window: any inflater with a larger window reads it.
  let serverMaxWindowBits = opts.serverMaxWindowBits
  if (offer.serverMaxWindowBits !== null) {
    // a window of 8 bits can not be honoured by zlib: decline this offer (§7.1.2.1)
    if (offer.serverMaxWindowBits < MIN_SERVER_WINDOW_BITS) return null
    serverMaxWindowBits = Math.min(serverMaxWindowBits, offer.serverMaxWindowBits)
    response += `; server_max_window_bits=${serverMaxWindowBits}`
  }

  // §7.1.2.2: "If a received extension negotiation offer doesn't have the
  // 'client_max_window_bits' extension parameter, the corresponding extension negotiation
  // response to the offer MUST NOT include the 'client_max_window_bits' extension parameter."
  // With it, the response may carry a value no larger than the offered one.
  let clientMaxWindowBits = MAX_WINDOW_BITS
  if (offer.clientMaxWindowBits !== null) {
    const offered = offer.clientMaxWindowBits === true ? MAX_WINDOW_BITS : offer.clientMaxWindowBits
    clientMaxWindowBits = Math.min(offered, opts.clientMaxWindowBits)
    if (clientMaxWindowBits < offered) response += `; client_max_window_bits=${clientMaxWindowBits}`
  }

  return {
    params: { serverNoContextTakeover, clientNoContextTakeover, serverMaxWindowBits, clientMaxWindowBits },
    response
  }
}

/**
 * Negotiate permessage-deflate from the raw Sec-WebSocket-Extensions value: the first
 * acceptable permessage-deflate offer wins; other extensions are ignored (never answered).
 * A header that does not follow the RFC 6455 §9.1 grammar is declined as a whole.
 * Returns null when nothing was accepted (the 101 then carries no Sec-WebSocket-Extensions).
 */
export function negotiatePerMessageDeflate (header: string | undefined, options: DeflateNegotiationOptions = {}): DeflateAgreement | null {
  if (header === undefined || header.length === 0) return null
  const offers = parseExtensions(header)
  if (offers === null) return null
  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue
    const parsed = parseDeflateOffer(offer)
    if (parsed === null) continue
    const agreement = acceptOffer(parsed, options)
    if (agreement !== null) return agreement
  }
  return null
}

// ---- the client side (injectWS) ----

/** What a client offers (all optional: a bare `permessage-deflate` by default). */
export interface DeflateClientOffer {
  /** ask the server to reset its context after each message */
  serverNoContextTakeover?: boolean
  /** announce that we reset our context after each message */
  clientNoContextTakeover?: boolean
  /** the largest window the server may compress with, 8..15 */
  serverMaxWindowBits?: number
}

/**
 * The Sec-WebSocket-Extensions value of a client's offer. `client_max_window_bits` is never
 * offered: a server could then ask for a window of 8 bits, which zlib can not compress with
 * (see MIN_SERVER_WINDOW_BITS), and without it the server MUST NOT limit ours (§7.1.2.2).
 */
export function buildDeflateOffer (offer: DeflateClientOffer): string {
  let value = PERMESSAGE_DEFLATE
  if (offer.serverNoContextTakeover === true) value += '; server_no_context_takeover'
  if (offer.clientNoContextTakeover === true) value += '; client_no_context_takeover'
  if (offer.serverMaxWindowBits !== undefined) value += `; server_max_window_bits=${checkBits('serverMaxWindowBits', offer.serverMaxWindowBits, MIN_WINDOW_BITS)}`
  return value
}

function badResponse (message: string): ProtocolError {
  return new ProtocolError('WS_ERR_EXTENSION_RESPONSE', CloseCode.ProtocolError, `invalid Sec-WebSocket-Extensions response: ${message}`)
}

/**
 * Check the server's response to a client's offer. Returns the parameters in force, in the terms
 * PerMessageDeflate reads (server* = what this end compresses with, client* = what it inflates),
 * or null when the server declined (RFC 7692 §5: "If a server responds with no PMCE element ...,
 * both endpoints proceed without per-message compression"). Throws a ProtocolError
 * (WS_ERR_EXTENSION_RESPONSE) where the client MUST _Fail the WebSocket Connection_.
 */
export function acceptDeflateResponse (header: string | undefined, offer: DeflateClientOffer | null): DeflateParams | null {
  if (header === undefined || header.trim() === '') return null
  // null: nothing was offered, so any extension in the response is one "not present in the
  // client's handshake" (RFC 6455 §4.1)
  if (offer === null) throw badResponse('an extension that was not offered')
  const elements = parseExtensions(header)
  if (elements === null) throw badResponse('not the RFC 6455 §9.1 grammar')
  // RFC 6455 §4.1: an extension "that was not present in the client's handshake" fails the
  // connection; RFC 7692 §5: "If a server gives an invalid response, such as accepting a PMCE
  // that the client did not offer, the client MUST _Fail the WebSocket Connection_." (one offer,
  // so one element at most)
  if (elements.some((e) => e.name !== PERMESSAGE_DEFLATE)) throw badResponse('an extension that was not offered')
  if (elements.length === 0) return null
  if (elements.length > 1) throw badResponse('permessage-deflate accepted more than once')
  // RFC 7692 §7: "A client MUST _Fail the WebSocket Connection_ if the peer server accepted an
  // extension negotiation offer for this extension with an extension negotiation response"
  // containing "an extension parameter not defined for use in a response", "an extension
  // parameter with an invalid value" or "multiple extension parameters with the same name". The
  // parameters and their values are those of an offer (§7.1), so the offer's parser checks them;
  // what differs in a response is checked below.
  const response = parseDeflateOffer(elements[0])
  if (response === null) throw badResponse('an unknown, repeated or invalid parameter')
  // §7.1.2.2: without client_max_window_bits in the offer (we never send it), the response "MUST
  // NOT include" it
  if (response.clientMaxWindowBits !== null) throw badResponse('client_max_window_bits was not offered')
  // §7.1.2.1: "the same or smaller value as the offer"
  if (response.serverMaxWindowBits !== null && offer.serverMaxWindowBits !== undefined && response.serverMaxWindowBits > offer.serverMaxWindowBits) {
    throw badResponse('server_max_window_bits is larger than offered')
  }
  // §7.1.1.2: with client_no_context_takeover in the response "the client MUST NOT use context
  // takeover"; one we offered is a promise kept anyway
  const clientNoContextTakeover = response.clientNoContextTakeover || offer.clientNoContextTakeover === true
  const serverNoContextTakeover = response.serverNoContextTakeover
  // our inflater keeps a 15-bit window: it reads whatever window the server compressed with
  return { serverNoContextTakeover: clientNoContextTakeover, clientNoContextTakeover: serverNoContextTakeover, serverMaxWindowBits: MAX_WINDOW_BITS, clientMaxWindowBits: MAX_WINDOW_BITS }
}
