// RFC 7692 §5-§7 negotiation: pure table tests of lib/protocol/permessage-deflate.ts
import t from 'tap'
import {
  acceptOffer, checkNegotiationOptions, type DeflateNegotiationOptions, negotiatePerMessageDeflate, parseDeflateOffer
} from '../../lib/protocol/permessage-deflate.js'
import { parseExtensions } from '../../lib/protocol/header-tokens.js'
import { DEFLATE_DEFAULTS, resolveDeflateOptions } from '../../lib/connection/deflate.js'

interface Row {
  header: string | undefined
  options?: DeflateNegotiationOptions
  /** expected Sec-WebSocket-Extensions response, or null = declined */
  response: string | null
  params?: { snct?: boolean, cnct?: boolean, sbits?: number, cbits?: number }
}

const rows: Row[] = [
  // plain offers
  { header: undefined, response: null },
  { header: '', response: null },
  { header: 'permessage-deflate', response: 'permessage-deflate', params: { sbits: 15, cbits: 15 } },
  { header: 'x-webkit-deflate-frame', response: null },
  { header: 'foo, permessage-deflate', response: 'permessage-deflate' },
  { header: '  permessage-deflate  ;  client_max_window_bits  ', response: 'permessage-deflate' },
  // Chromium's offer
  { header: 'permessage-deflate; client_max_window_bits', response: 'permessage-deflate', params: { cbits: 15 } },
  { header: 'permessage-deflate; client_max_window_bits', options: { clientMaxWindowBits: 10 }, response: 'permessage-deflate; client_max_window_bits=10', params: { cbits: 10 } },
  // §7.1.2.2: no client_max_window_bits in the offer: none in the response, whatever we prefer
  { header: 'permessage-deflate', options: { clientMaxWindowBits: 10 }, response: 'permessage-deflate', params: { cbits: 15 } },
  { header: 'permessage-deflate; client_max_window_bits=12', response: 'permessage-deflate', params: { cbits: 12 } },
  { header: 'permessage-deflate; client_max_window_bits=12', options: { clientMaxWindowBits: 9 }, response: 'permessage-deflate; client_max_window_bits=9', params: { cbits: 9 } },
  { header: 'permessage-deflate; client_max_window_bits=8', response: 'permessage-deflate', params: { cbits: 8 } },
  { header: 'permessage-deflate; client_max_window_bits="10"', response: 'permessage-deflate', params: { cbits: 10 } },
  // server_max_window_bits: answered with the same or a smaller value
  { header: 'permessage-deflate; server_max_window_bits=10', response: 'permessage-deflate; server_max_window_bits=10', params: { sbits: 10 } },
  { header: 'permessage-deflate; server_max_window_bits=15', options: { serverMaxWindowBits: 11 }, response: 'permessage-deflate; server_max_window_bits=11', params: { sbits: 11 } },
  { header: 'permessage-deflate; server_max_window_bits=9', options: { serverMaxWindowBits: 11 }, response: 'permessage-deflate; server_max_window_bits=9', params: { sbits: 9 } },
  // not offered: we may still compress with a smaller window, without telling
  { header: 'permessage-deflate', options: { serverMaxWindowBits: 11 }, response: 'permessage-deflate', params: { sbits: 11 } },
  // 8 bits can not be honoured by zlib: that offer is declined, the next one accepted
  { header: 'permessage-deflate; server_max_window_bits=8', response: null },
  { header: 'permessage-deflate; server_max_window_bits=8, permessage-deflate', response: 'permessage-deflate' },
  // context takeover
  { header: 'permessage-deflate; server_no_context_takeover', response: 'permessage-deflate; server_no_context_takeover', params: { snct: true } },
  { header: 'permessage-deflate', options: { serverNoContextTakeover: true }, response: 'permessage-deflate; server_no_context_takeover', params: { snct: true } },
  { header: 'permessage-deflate; client_no_context_takeover', response: 'permessage-deflate; client_no_context_takeover', params: { cnct: true } },
  { header: 'permessage-deflate', options: { clientNoContextTakeover: true }, response: 'permessage-deflate; client_no_context_takeover', params: { cnct: true } },
  {
    header: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=13',
    response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12',
    params: { snct: true, cnct: true, sbits: 12, cbits: 13 }
  },
  // invalid offers are declined (§7), the first acceptable one wins
  { header: 'permessage-deflate; foo', response: null },
  { header: 'permessage-deflate; foo=1, permessage-deflate; client_max_window_bits', response: 'permessage-deflate', params: { cbits: 15 } },
  { header: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', response: null },
  { header: 'permessage-deflate; client_max_window_bits; client_max_window_bits=10', response: null },
  { header: 'permessage-deflate; server_no_context_takeover=1', response: null },
  { header: 'permessage-deflate; client_no_context_takeover=true', response: null },
  { header: 'permessage-deflate; server_max_window_bits', response: null },
  { header: 'permessage-deflate; server_max_window_bits=7', response: null },
  { header: 'permessage-deflate; server_max_window_bits=16', response: null },
  { header: 'permessage-deflate; server_max_window_bits=010', response: null },
  { header: 'permessage-deflate; server_max_window_bits=1a', response: null },
  { header: 'permessage-deflate; client_max_window_bits=0', response: null },
  { header: 'permessage-deflate; client_max_window_bits=16', response: null },
  { header: 'permessage-deflate; client_max_window_bits=08', response: null },
  { header: 'permessage-deflate; client_max_window_bits=-9', response: null },
  { header: 'permessage-deflate; __proto__', response: null },
  // several offers: the first acceptable wins, in the client's order
  { header: 'permessage-deflate; server_max_window_bits=10, permessage-deflate', response: 'permessage-deflate; server_max_window_bits=10', params: { sbits: 10 } },
  { header: 'permessage-deflate; bogus, permessage-deflate; server_no_context_takeover, permessage-deflate', response: 'permessage-deflate; server_no_context_takeover', params: { snct: true } },
  // a header that breaks the RFC 6455 §9.1 grammar declines everything
  { header: 'permessage-deflate; client_max_window_bits="10', response: null },
  { header: 'permessage-deflate;;', response: null },
  { header: 'permessage-deflate; a=b c', response: null },
  // extension names are tokens compared as sent
  { header: 'PerMessage-Deflate', response: null }
]

t.test('negotiation table', async (t) => {
  for (const row of rows) {
    const label = `${JSON.stringify(row.header)} ${row.options === undefined ? '' : JSON.stringify(row.options)}`
    const got = negotiatePerMessageDeflate(row.header, row.options)
    if (row.response === null) {
      t.equal(got, null, `declined: ${label}`)
      continue
    }
    t.equal(got?.response, row.response, `response: ${label}`)
    if (got === null) continue
    const p = row.params ?? {}
    t.same(got.params, {
      serverNoContextTakeover: p.snct ?? false,
      clientNoContextTakeover: p.cnct ?? false,
      serverMaxWindowBits: p.sbits ?? row.options?.serverMaxWindowBits ?? 15,
      clientMaxWindowBits: p.cbits ?? 15
    }, `params: ${label}`)
    // the response must itself parse as one valid extension element
    const parsed = parseExtensions(got.response)
    t.equal(parsed?.length, 1, `response parses: ${label}`)
  }
})

t.test('parseDeflateOffer reads each parameter', async (t) => {
  const offer = (s: string) => {
    const list = parseExtensions(s)
    if (list === null) throw new Error('bad header')
    return parseDeflateOffer(list[0])
  }
  t.same(offer('permessage-deflate; client_max_window_bits'), { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: null, clientMaxWindowBits: true })
  t.same(offer('permessage-deflate; server_max_window_bits=8; client_max_window_bits=15'), { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 8, clientMaxWindowBits: 15 })
  t.equal(offer('other-extension'), null)
  for (let bits = 8; bits <= 15; bits++) {
    t.equal(offer(`permessage-deflate; server_max_window_bits=${bits}`)?.serverMaxWindowBits, bits)
  }
})

t.test('acceptOffer and option checks', async (t) => {
  const base = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: null, clientMaxWindowBits: null }
  t.equal(acceptOffer({ ...base, serverMaxWindowBits: 8 }), null, 'an 8-bit server window is declined')
  t.throws(() => checkNegotiationOptions({ serverMaxWindowBits: 8 }), RangeError)
  t.throws(() => checkNegotiationOptions({ clientMaxWindowBits: 16 }), RangeError)
  t.throws(() => checkNegotiationOptions({ clientMaxWindowBits: 9.5 }), RangeError)
  t.same(checkNegotiationOptions({ clientMaxWindowBits: 8 }).clientMaxWindowBits, 8)
})

t.test('resolveDeflateOptions: off by default, true, objects merged over the plugin', async (t) => {
  t.equal(resolveDeflateOptions(undefined, null), null)
  t.equal(resolveDeflateOptions(false, DEFLATE_DEFAULTS), null)
  t.same(resolveDeflateOptions(true, null), DEFLATE_DEFAULTS)
  const plugin = resolveDeflateOptions({ threshold: 10, level: 1 }, null)
  t.same(plugin, { ...DEFLATE_DEFAULTS, threshold: 10, level: 1 })
  t.same(resolveDeflateOptions({ memLevel: 4 }, plugin), { ...DEFLATE_DEFAULTS, threshold: 10, level: 1, memLevel: 4 })
  t.equal(resolveDeflateOptions(undefined, plugin), plugin, 'a route without the option inherits')
  t.equal(resolveDeflateOptions(true, plugin), plugin, 'true on a route keeps the plugin settings')
  t.throws(() => resolveDeflateOptions({ level: 10 }, null), RangeError)
  t.throws(() => resolveDeflateOptions({ memLevel: 0 }, null), RangeError)
  t.throws(() => resolveDeflateOptions({ threshold: -1 }, null), RangeError)
  t.throws(() => resolveDeflateOptions('yes' as never, null), TypeError)
})
