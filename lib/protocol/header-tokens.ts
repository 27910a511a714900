/**
 * Linear-time, prototype-safe parsers for the handshake's list-valued headers.
 * No regular expressions over header values: each parser walks the string once.
 *
 * RFC 7230 §3.2.6: token = 1*tchar
 *   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|"
 *         / "~" / DIGIT / ALPHA
 */

const TCHAR = new Uint8Array(128)
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1

export function isTchar (code: number): boolean {
  return code < 128 && TCHAR[code] === 1
}

export function isToken (value: string): boolean {
  if (value.length === 0) return false
  for (let i = 0; i < value.length; i++) if (!isTchar(value.charCodeAt(i))) return false
  return true
}

function isOws (code: number): boolean {
  return code === 0x20 || code === 0x09
}

/** One element of an Upgrade header: a protocol name and its version, if any. */
export interface UpgradeProtocol {
  name: string
  version: string | undefined
}

/**
 * RFC 9110 §7.8:
 *   Upgrade          = #protocol
 *   protocol         = protocol-name ["/" protocol-version]
 *   protocol-name    = token
 *   protocol-version = token
 * e.g. "HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11". Returns null for a value that does not follow
 * the grammar (no whitespace around "/"). Linear in the length of the value.
 */
export function parseProtocolList (value: string): UpgradeProtocol[] | null {
  const out: UpgradeProtocol[] = []
  const n = value.length
  let i = 0
  const readToken = (): string | null => {
    const start = i
    while (i < n && isTchar(value.charCodeAt(i))) i++
    return i === start ? null : value.slice(start, i)
  }
  while (i < n) {
    while (i < n && (isOws(value.charCodeAt(i)) || value.charCodeAt(i) === 0x2c)) i++
    if (i >= n) break
    const name = readToken()
    if (name === null) return null
    let version: string | undefined
    if (i < n && value.charCodeAt(i) === 0x2f) { // "/"
      i++
      const token = readToken()
      if (token === null) return null
      version = token
    }
    out.push({ name, version })
    while (i < n && isOws(value.charCodeAt(i))) i++
    if (i < n && value.charCodeAt(i) !== 0x2c) return null
  }
  return out
}

/**
 * True when the Upgrade header `value` names the protocol `name` (ASCII case-insensitive)
 * without a version, among any others: "foo/2, websocket" names websocket. A malformed list
 * names nothing.
 */
export function hasProtocol (value: string | undefined, name: string): boolean {
  if (value === undefined) return false
  const list = parseProtocolList(value)
  if (list === null) return false
  const wanted = name.toLowerCase()
  for (const item of list) if (item.version === undefined && item.name.toLowerCase() === wanted) return true
  return false
}

/**
 * Split a `#token` list (RFC 7230 §7: "1#element" with optional whitespace and empty elements).
 * Returns null when an element is not a token. Linear in the length of the value.
 */
export function parseTokenList (value: string): string[] | null {
  // the Upgrade grammar without versions: the same walk, and "/" is not a tchar
  const list = parseProtocolList(value)
  if (list === null) return null
  const out = new Array<string>(list.length)
  for (let i = 0; i < list.length; i++) {
    if (list[i].version !== undefined) return null
    out[i] = list[i].name
  }
  return out
}

/** True when the comma-separated list `value` holds `token` (ASCII case-insensitive). */
export function hasToken (value: string | undefined, token: string): boolean {
  if (value === undefined) return false
  const list = parseTokenList(value)
  if (list === null) return false
  const wanted = token.toLowerCase()
  for (const item of list) if (item.toLowerCase() === wanted) return true
  return false
}

/** One offered extension: its name and parameters (values are strings, `true` when bare). */
export interface ExtensionOffer {
  name: string
  /** parameters in order of appearance; a Map, so `__proto__` is just a key */
  params: Map<string, string | true>
  /** a parameter name appeared twice */
  duplicate: boolean
}

/**
 * RFC 6455 §9.1:
 *   Sec-WebSocket-Extensions = extension-list
 *   extension-list = 1#extension
 *   extension = extension-token *( ";" extension-param )
 *   extension-param = token [ "=" (token | quoted-string) ]
 * Returns null for a value that does not follow the grammar (unclosed quotes included).
 * Linear in the length of the value.
 */
export function parseExtensions (value: string): ExtensionOffer[] | null {
  const out: ExtensionOffer[] = []
  const n = value.length
  let i = 0
  const skipOws = (): void => { while (i < n && isOws(value.charCodeAt(i))) i++ }
  const readToken = (): string | null => {
    const start = i
    while (i < n && isTchar(value.charCodeAt(i))) i++
    return i === start ? null : value.slice(start, i)
  }
  while (i < n) {
    while (i < n && (isOws(value.charCodeAt(i)) || value.charCodeAt(i) === 0x2c)) i++
    if (i >= n) break
    const name = readToken()
    if (name === null) return null
    const offer: ExtensionOffer = { name, params: new Map(), duplicate: false }
    skipOws()
    while (i < n && value.charCodeAt(i) === 0x3b) { // ";"
      i++
      skipOws()
      const key = readToken()
      if (key === null) return null
      skipOws()
      let paramValue: string | true = true
      if (i < n && value.charCodeAt(i) === 0x3d) { // "="
        i++
        skipOws()
        if (i < n && value.charCodeAt(i) === 0x22) { // quoted-string
          i++
          let text = ''
          let closed = false
          while (i < n) {
            const c = value.charCodeAt(i)
            if (c === 0x22) { closed = true; i++; break }
            if (c === 0x5c) { // quoted-pair
              if (i + 1 >= n) return null
              text += value[i + 1]
              i += 2
              continue
            }
            text += value[i]
            i++
          }
          if (!closed) return null
          // §9.1: "the value MUST conform to the ABNF for token" even when quoted
          if (!isToken(text)) return null
          paramValue = text
        } else {
          const token = readToken()
          if (token === null) return null
          paramValue = token
        }
        skipOws()
      }
      if (offer.params.has(key)) offer.duplicate = true
      offer.params.set(key, paramValue)
    }
    out.push(offer)
    if (i < n && value.charCodeAt(i) !== 0x2c) return null
  }
  return out
}
