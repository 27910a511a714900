// lib/protocol/header-tokens.ts: #token lists (RFC 7230 §7) and Sec-WebSocket-Extensions
// (RFC 6455 §9.1), linear-time and prototype-safe.
import t from 'tap'
import { hasProtocol, hasToken, isTchar, isToken, parseExtensions, parseProtocolList, parseTokenList, type ExtensionOffer } from '../../lib/protocol/header-tokens.js'

/** Offers as plain values: [name, [[param, value]...], duplicate]. */
function plain (offers: ExtensionOffer[] | null): unknown {
  if (offers === null) return null
  return offers.map((o) => [o.name, [...o.params.entries()], o.duplicate])
}

t.test('tchar and token', async (t) => {
  const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
  let count = 0
  for (let c = 0; c < 256; c++) if (isTchar(c)) count++
  t.equal(count, tchars.length)
  for (const ch of tchars) t.ok(isTchar(ch.charCodeAt(0)), ch)
  for (const ch of ' \t"(),/:;<=>?@[\\]{}\x7f\x00é') t.notOk(isTchar(ch.charCodeAt(0)), JSON.stringify(ch))
  t.notOk(isTchar(0x10a), 'no code point above ASCII')
  t.ok(isToken('permessage-deflate'))
  t.notOk(isToken(''))
  t.notOk(isToken('a b'))
})

t.test('token lists', async (t) => {
  const cases: Array<[string, string[] | null]> = [
    ['', []],
    ['chat', ['chat']],
    ['chat, superchat', ['chat', 'superchat']],
    ['chat,superchat', ['chat', 'superchat']],
    [' chat ,\tsuperchat\t', ['chat', 'superchat']],
    [',,chat,, ,superchat,', ['chat', 'superchat']],
    [', ,', []],
    ['a b', null],
    ['chat;q=1', null],
    ['"chat"', null],
    ['chat, ünicode', null],
    ['chat,\x00', null],
    ['__proto__, constructor, hasOwnProperty, toString', ['__proto__', 'constructor', 'hasOwnProperty', 'toString']]
  ]
  for (const [value, want] of cases) t.same(parseTokenList(value), want, JSON.stringify(value))
  t.ok(hasToken('keep-alive, Upgrade', 'upgrade'))
  t.ok(hasToken('UPGRADE', 'Upgrade'))
  t.notOk(hasToken('keep-alive', 'upgrade'))
  t.notOk(hasToken(undefined, 'upgrade'))
  t.notOk(hasToken('upgrade x', 'upgrade'), 'a malformed list holds no token')
  t.notOk(hasToken('__proto__', 'constructor'))
  t.ok(hasToken('__proto__', '__proto__'))
})

t.test('Upgrade protocol lists (RFC 9110 §7.8: protocol-name ["/" protocol-version])', async (t) => {
  const cases: Array<[string, Array<[string, string | undefined]> | null]> = [
    ['', []],
    ['websocket', [['websocket', undefined]]],
    ['foo/2, websocket', [['foo', '2'], ['websocket', undefined]]],
    ['websocket, foo/2', [['websocket', undefined], ['foo', '2']]],
    // the example of RFC 9110 §7.8
    ['HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11', [['HTTP', '2.0'], ['SHTTP', '1.3'], ['IRC', '6.9'], ['RTA', 'x11']]],
    ['websocket/13', [['websocket', '13']]],
    [' , foo/2 ,	, websocket ,', [['foo', '2'], ['websocket', undefined]]],
    ['foo/', null],
    ['/2', null],
    ['foo/2/3', null],
    ['foo /2', null],
    ['foo/ 2', null],
    ['foo/2 websocket', null],
    ['foo/"2"', null],
    ['websocket;q=1', null],
    ['__proto__/constructor', [['__proto__', 'constructor']]]
  ]
  for (const [value, want] of cases) {
    const got = parseProtocolList(value)
    t.same(got === null ? null : got.map((p) => [p.name, p.version]), want, JSON.stringify(value))
  }
  t.ok(hasProtocol('foo/2, websocket', 'websocket'))
  t.ok(hasProtocol('HTTP/2.0, WebSocket', 'websocket'), 'names compare ASCII case-insensitively')
  t.ok(hasProtocol('websocket', 'websocket'))
  t.notOk(hasProtocol('websocket/13', 'websocket'), 'a versioned element is not the bare protocol')
  t.notOk(hasProtocol('foo/websocket', 'websocket'), 'a version is not a name')
  t.notOk(hasProtocol('websocket2, h2c', 'websocket'))
  t.notOk(hasProtocol('foo/, websocket', 'websocket'), 'a malformed list holds no protocol')
  t.notOk(hasProtocol(undefined, 'websocket'))
  const long = ' '.repeat(50000)
  t.ok(hasProtocol('foo/2,' + long + 'websocket', 'websocket'), 'linear in the length of the value')
  t.equal(parseProtocolList('foo/2' + long + 'websocket'), null)
})

t.test('extension offers with parameters', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['', []],
    ['permessage-deflate', [['permessage-deflate', [], false]]],
    ['permessage-deflate; client_max_window_bits', [['permessage-deflate', [['client_max_window_bits', true]], false]]],
    ['permessage-deflate; client_max_window_bits=10; server_no_context_takeover',
      [['permessage-deflate', [['client_max_window_bits', '10'], ['server_no_context_takeover', true]], false]]],
    ['permessage-deflate ; server_max_window_bits = 12 , permessage-deflate',
      [['permessage-deflate', [['server_max_window_bits', '12']], false], ['permessage-deflate', [], false]]],
    ['permessage-deflate; client_max_window_bits="15"', [['permessage-deflate', [['client_max_window_bits', '15']], false]]],
    ['x; a="b\\c"', [['x', [['a', 'bc']], false]]],
    ['x; a=1; a=2', [['x', [['a', '2']], true]]],
    ['foo, bar; baz, ,qux', [['foo', [], false], ['bar', [['baz', true]], false], ['qux', [], false]]],
    // prototype names are plain names and parameters
    ['__proto__; constructor=1; hasOwnProperty', [['__proto__', [['constructor', '1'], ['hasOwnProperty', true]], false]]],
    ['constructor; __proto__="x"; toString', [['constructor', [['__proto__', 'x'], ['toString', true]], false]]],
    ['hasOwnProperty; hasOwnProperty; __proto__; __proto__', [['hasOwnProperty', [['hasOwnProperty', true], ['__proto__', true]], true]]],
    // malformed
    ['x; a="unclosed', null],
    ['x; a="', null],
    ['x; a="b\\', null],
    ['x; a="with space"', null],
    ['x; a=""', null],
    ['x; a=', null],
    ['x; =1', null],
    ['x;', null],
    ['; a', null],
    ['x y', null],
    ['x; a b', null],
    ['x; a=1 2', null],
    ['x; a="1"2', null]
  ]
  for (const [value, want] of cases) t.same(plain(parseExtensions(value)), want, JSON.stringify(value))
  // the params Map never touches Object.prototype
  const offers = parseExtensions('e; __proto__=polluted; constructor=c')
  t.ok(offers !== null && offers[0].params instanceof Map)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(Object.prototype.constructor, Object)
})

t.test('linear time: long runs of whitespace parse to the right result', async (t) => {
  const spaces = ' '.repeat(50000)
  // token, 50,000 spaces, token: not a list (no comma between), refused in one pass
  t.equal(parseTokenList('chat' + spaces + 'superchat'), null)
  t.same(parseTokenList('chat,' + spaces + 'superchat'), ['chat', 'superchat'])
  t.same(parseTokenList('chat' + spaces + ',superchat'), ['chat', 'superchat'])
  t.same(parseTokenList(spaces + 'chat' + spaces), ['chat'])
  t.same(parseTokenList(','.repeat(50000) + 'a'), ['a'])
  t.same(parseTokenList(', '.repeat(25000) + 'a' + ' ,'.repeat(25000)), ['a'])
  t.equal(parseExtensions('foo' + spaces + 'bar'), null)
  t.same(plain(parseExtensions('foo;' + spaces + 'a' + spaces + '=' + spaces + '1' + spaces + ',' + spaces + 'bar')),
    [['foo', [['a', '1']], false], ['bar', [], false]])
  t.same(plain(parseExtensions('foo' + '; a'.repeat(20000))), [['foo', [['a', true]], true]])
  t.equal(parseExtensions('x; a="' + 'b'.repeat(50000)), null, 'a long unclosed quoted string')
  t.same(plain(parseExtensions('x; a="' + 'b'.repeat(50000) + '"')), [['x', [['a', 'b'.repeat(50000)]], false]])
  t.equal(parseExtensions('x; a="' + '\\b'.repeat(25000)), null, 'long quoted-pairs, unclosed')
  const many = Array.from({ length: 5000 }, (_, i) => `p${i}`).join(', ')
  t.equal(parseTokenList(many)?.length, 5000)
  t.ok(hasToken('a,' + spaces + 'upgrade', 'upgrade'))
})
