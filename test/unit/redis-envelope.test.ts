// The Redis adapter's envelope (lib/topics/redis-envelope.ts): the existing kinds keep their
// bytes; the history publication decodes what the Lua script writes and nothing else.
import t from 'tap'
import { decodeEnvelope, encodeHistoryPublication, encodePresenceReply, encodePresenceRequest, encodePublication, EnvelopeKind, HEADER_LENGTH } from '../../lib/topics/redis-envelope.js'

const id = Buffer.from('00112233445566778899aabbccddeeff', 'hex')

t.test('the kinds that existed before history keep their bytes', async (t) => {
  t.equal(encodePublication(id, Buffer.from('hi'), EnvelopeKind.Text).toString('hex'), '0101' + id.toString('hex') + '6869')
  t.equal(encodePublication(id, Buffer.from([0xff]), EnvelopeKind.Binary).toString('hex'), '0102' + id.toString('hex') + 'ff')
  t.equal(encodePublication(id, Buffer.from('{}'), EnvelopeKind.Json).toString('hex'), '0105' + id.toString('hex') + '7b7d')
  t.equal(encodePresenceRequest(id, 7).toString('hex'), '0103' + id.toString('hex') + '00000007')
  t.equal(encodePresenceReply(id, 7, 3).toString('hex'), '0104' + id.toString('hex') + '0000000700000003')
})

t.test('a history publication: <epoch> <offset> <data> after the header, round trip', async (t) => {
  const bytes = encodeHistoryPublication(id, 'Ab-_9', 9007199254740991, '{"a":"x y"}')
  t.equal(bytes.subarray(0, HEADER_LENGTH).toString('hex'), '0106' + id.toString('hex'))
  t.equal(bytes.subarray(HEADER_LENGTH).toString(), 'Ab-_9 9007199254740991 {"a":"x y"}')
  const envelope = decodeEnvelope(bytes)
  t.match(envelope, { kind: EnvelopeKind.History, epoch: 'Ab-_9', offset: 9007199254740991 })
  t.equal((envelope as { data: Buffer }).data.toString(), '{"a":"x y"}', 'spaces in the data stay')
  t.match(decodeEnvelope(encodeHistoryPublication(id, 'e', 1, '')), { epoch: 'e', offset: 1 }, 'empty data')
})

t.test('a malformed history publication is not an envelope (null, never a throw)', async (t) => {
  const header = encodeHistoryPublication(id, 'e', 1, '').subarray(0, HEADER_LENGTH)
  const cases = ['', 'e', 'e ', ' 1 x', 'e 1', 'e  x', 'e 01 x', 'e -1 x', 'e 1a x', 'e 99999999999999999 x', `${'e'.repeat(65)} 1 x`]
  for (const body of cases) t.equal(decodeEnvelope(Buffer.concat([header, Buffer.from(body)])), null, JSON.stringify(body))
  t.not(decodeEnvelope(Buffer.concat([header, Buffer.from(`${'e'.repeat(64)} 1 x`)])), null, 'an epoch of 64 characters is fine')
})
