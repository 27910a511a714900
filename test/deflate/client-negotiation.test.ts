// RFC 7692 §5-§7 from the client's side: the offer injectWS() sends and the checks it applies to
// the server's response (pure table tests of lib/protocol/permessage-deflate.ts).
import t from 'tap'
import { acceptDeflateResponse, buildDeflateOffer, type DeflateClientOffer } from '../../lib/protocol/permessage-deflate.js'
import { ProtocolError } from '../../lib/protocol/errors.js'

t.test('the offer', async (t) => {
  t.equal(buildDeflateOffer({}), 'permessage-deflate')
  t.equal(buildDeflateOffer({ serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10 }),
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10')
  // §7.1.2.1: "This parameter has a decimal integer value without leading zeroes between 8 to 15"
  for (const bad of [7, 16, 9.5, Number.NaN]) {
    t.throws(() => buildDeflateOffer({ serverMaxWindowBits: bad }), RangeError, `server_max_window_bits ${bad}`)
  }
})

interface Accepted {
  header: string | undefined
  offer?: DeflateClientOffer
  /** expected: what the client compresses with (out) and what it inflates (in); null = no compression */
  expect: { outReset: boolean, inReset: boolean } | null
}

const accepted: Accepted[] = [
  // §5: "If a server responds with no PMCE element ... both endpoints proceed without per-message compression"
  { header: undefined, expect: null },
  { header: '', expect: null },
  { header: 'permessage-deflate', expect: { outReset: false, inReset: false } },
  { header: '  permessage-deflate  ', expect: { outReset: false, inReset: false } },
  // §7.1.1.1: the server resets its context: our inflater may reset too
  { header: 'permessage-deflate; server_no_context_takeover', expect: { outReset: false, inReset: true } },
  // §7.1.1.2: "the client MUST NOT use context takeover" when the response has client_no_context_takeover
  { header: 'permessage-deflate; client_no_context_takeover', expect: { outReset: true, inReset: false } },
  // an offer of client_no_context_takeover is a promise kept whatever the response says
  { header: 'permessage-deflate', offer: { clientNoContextTakeover: true }, expect: { outReset: true, inReset: false } },
  // §7.1.2.1: "A server MAY include the server_max_window_bits extension parameter in an extension
  // negotiation response even if the extension negotiation offer ... didn't include" it
  { header: 'permessage-deflate; server_max_window_bits=8', expect: { outReset: false, inReset: false } },
  { header: 'permessage-deflate; server_max_window_bits=10', offer: { serverMaxWindowBits: 10 }, expect: { outReset: false, inReset: false } },
  { header: 'permessage-deflate; server_max_window_bits="9"', offer: { serverMaxWindowBits: 12 }, expect: { outReset: false, inReset: false } }
]

t.test('responses the client accepts', async (t) => {
  for (const row of accepted) {
    const params = acceptDeflateResponse(row.header, row.offer ?? {})
    if (row.expect === null) {
      t.equal(params, null, `${String(row.header)}: no compression`)
      continue
    }
    t.ok(params, `${row.header}: accepted`)
    // PerMessageDeflate reads server* as "what we compress with", client* as "what we inflate"
    t.equal(params!.serverNoContextTakeover, row.expect.outReset, `${row.header}: our context reset`)
    t.equal(params!.clientNoContextTakeover, row.expect.inReset, `${row.header}: peer context reset`)
    // a 15-bit inflater reads what any smaller window produced; we compress with 15 bits
    // (client_max_window_bits is never offered, so the server can not ask for less)
    t.equal(params!.serverMaxWindowBits, 15)
    t.equal(params!.clientMaxWindowBits, 15)
  }
})

const failed: Array<{ header: string, offer?: DeflateClientOffer, why: string }> = [
  // RFC 6455 §4.1: "If the response includes a |Sec-WebSocket-Extensions| header field and this
  // header field indicates the use of an extension that was not present in the client's
  // handshake ..., the client MUST _Fail the WebSocket Connection_."
  { header: 'x-webkit-deflate-frame', why: 'an extension not offered' },
  { header: 'permessage-deflate, foo', why: 'an extension not offered next to ours' },
  { header: 'permessage-deflate, permessage-deflate', why: 'our one offer accepted twice' },
  { header: 'permessage-deflate;', why: 'not the §9.1 grammar' },
  { header: 'permessage-deflate; x="unclosed', why: 'an unclosed quoted string' },
  // RFC 7692 §7: "A client MUST _Fail the WebSocket Connection_ if the peer server accepted an
  // extension negotiation offer for this extension with an extension negotiation response
  // meeting any of the following conditions:"
  // "The negotiation response contains an extension parameter not defined for use in a response."
  { header: 'permessage-deflate; mode=fast', why: 'an unknown parameter' },
  // "The negotiation response contains an extension parameter with an invalid value."
  { header: 'permessage-deflate; server_no_context_takeover=1', why: 'a value on a parameter that has none' },
  { header: 'permessage-deflate; client_no_context_takeover=yes', why: 'a value on a parameter that has none' },
  { header: 'permessage-deflate; server_max_window_bits', why: 'server_max_window_bits without its value' },
  { header: 'permessage-deflate; server_max_window_bits=16', why: 'a window over 15' },
  { header: 'permessage-deflate; server_max_window_bits=7', why: 'a window under 8' },
  { header: 'permessage-deflate; server_max_window_bits=010', why: 'a leading zero' },
  // "The negotiation response contains multiple extension parameters with the same name."
  { header: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', why: 'a parameter twice' },
  // §7.1.2.1: the response value must be "the same or smaller value as the offer"
  { header: 'permessage-deflate; server_max_window_bits=12', offer: { serverMaxWindowBits: 10 }, why: 'a larger window than offered' },
  // §7.1.2.2: "If a received extension negotiation offer doesn't have the client_max_window_bits
  // extension parameter, the corresponding extension negotiation response to the offer MUST NOT
  // include the client_max_window_bits extension parameter."
  { header: 'permessage-deflate; client_max_window_bits=10', why: 'client_max_window_bits that was not offered' }
]

t.test('nothing offered: no header is fine, any extension fails (RFC 6455 §4.1)', async (t) => {
  t.equal(acceptDeflateResponse(undefined, null), null)
  t.equal(acceptDeflateResponse('', null), null)
  t.throws(() => acceptDeflateResponse('permessage-deflate', null), { code: 'WS_ERR_EXTENSION_RESPONSE' })
})

t.test('responses that fail the connection', async (t) => {
  for (const row of failed) {
    let error: unknown
    try { acceptDeflateResponse(row.header, row.offer ?? {}) } catch (err) { error = err }
    t.ok(error instanceof ProtocolError && error.code === 'WS_ERR_EXTENSION_RESPONSE', `${row.why}: ${row.header}`)
  }
})
