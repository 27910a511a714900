// Fuzz test of the Sans-I/O core (issue 5): random and mutated frame streams, fed in random
// chunkings into WebSocketProtocol. For every input:
//   - no exception escapes receive();
//   - the input ends as messages/controls only, or with exactly one `fail` event, last, with a
//     ProtocolError code and a close code in {1002, 1007, 1009}, and exactly one Close frame;
//   - events and output frames equal those of a simple whole-buffer reference model
//     (test/fuzz/reference.ts), whatever the chunking, with or without an application close();
//   - every case runs twice: chunks given to the core, and chunks only lent (receive(chunk, true),
//     as the Node adapter does with its shared read buffer): the lent bytes are overwritten
//     as soon as receive() returns, so any view the core kept of them shows up as a difference.
//
// Short mode (npm test): FUZZ_ITERATIONS defaults to 3000. Long mode on demand:
//   FUZZ_ITERATIONS=1000000 npx tap --timeout=0 test/fuzz/core.fuzz.test.ts
// FUZZ_SEED picks another base seed; a failure prints the iteration's seed, and FUZZ_ONLY=<seed>
// replays that one input.
import t from 'tap'
import { WebSocketProtocol, type ProtocolEvent } from '../../lib/protocol/protocol.js'
import { ErrorCode, ProtocolError } from '../../lib/protocol/errors.js'
import { decodeFrames, frame, prng, randInt, randomBytes, cut } from '../unit/helpers.js'
import { CLOSE_CODE_OF, reference, type RefOptions, type RefResult } from './reference.js'

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 3000)
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 20261124)
const ONLY = process.env.FUZZ_ONLY === undefined ? undefined : Number(process.env.FUZZ_ONLY)

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode))
const ALPHABET = ['a', 'Z', ' ', 'é', '€', '😀', 'κ', '\u07ff', '\u0800', '\uffff', '\u{10ffff}', '\u{10000}']

type Rand = () => number

function randomText (rand: Rand, max: number): Buffer {
  let s = ''
  const n = randInt(rand, max + 1)
  for (let i = 0; i < n; i++) s += ALPHABET[randInt(rand, ALPHABET.length)]
  return Buffer.from(s)
}

function key (rand: Rand): Uint8Array | false {
  return Uint8Array.from([randInt(rand, 256), randInt(rand, 256), randInt(rand, 256), randInt(rand, 256)])
}

/** A well-formed stream (as the given role's peer sends it), possibly with several messages. */
function validStream (rand: Rand, role: 'server' | 'client', allowRsv1: boolean): Buffer {
  const frames: Buffer[] = []
  const mk = (spec: Parameters<typeof frame>[0]): void => {
    const lengthBytes = rand() < 0.1 ? ([0, 2, 8] as const)[randInt(rand, 3)] : undefined
    const len = spec.payload === undefined ? 0 : spec.payload.length
    const lb = lengthBytes === 0 && len > 125 ? undefined : lengthBytes === 2 && len > 65535 ? undefined : lengthBytes
    frames.push(frame({ ...spec, mask: role === 'server' ? key(rand) : false, lengthBytes: lb }))
  }
  const control = (): void => {
    const opcode = rand() < 0.6 ? 0x9 : 0xa
    mk({ opcode, payload: randomBytes(rand, rand() < 0.8 ? randInt(rand, 20) : randInt(rand, 126)) })
  }
  const items = 1 + randInt(rand, 6)
  for (let i = 0; i < items; i++) {
    const r = rand()
    if (r < 0.6) {
      const text = r < 0.35
      const size = rand() < 0.9 ? randInt(rand, 200) : randInt(rand, 5000)
      const data = text ? randomText(rand, size) : randomBytes(rand, size)
      const compressed = allowRsv1 && rand() < 0.3
      const pieces = rand() < 0.5 ? 1 : 1 + randInt(rand, 6)
      const points = Array.from({ length: pieces - 1 }, () => randInt(rand, data.length + 1)).sort((a, b) => a - b)
      const parts = cut(data, points)
      parts.forEach((part, j) => {
        mk({ fin: j === parts.length - 1, rsv: j === 0 && compressed ? 4 : 0, opcode: j === 0 ? (text ? 1 : 2) : 0, payload: part })
        if (j < parts.length - 1 && rand() < 0.3) control()
      })
    } else if (r < 0.85) {
      control()
    } else {
      const codes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]
      const body = rand() < 0.2 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0, 0]), randomText(rand, 20).subarray(0, 123)])
      if (body.length >= 2) body.writeUInt16BE(codes[randInt(rand, codes.length)])
      mk({ opcode: 0x8, payload: body })
    }
  }
  return Buffer.concat(frames)
}

/** Headers that break (or nearly break) a rule, for splicing into streams. */
function hostileHeader (rand: Rand): Buffer {
  const b0 = randInt(rand, 256)
  const masked = rand() < 0.7 ? 0x80 : 0
  switch (randInt(rand, 5)) {
    case 0: return Buffer.from([b0, masked | randInt(rand, 126), ...randomBytes(rand, 4)])
    case 1: return Buffer.from([b0, masked | 126, randInt(rand, 256), randInt(rand, 256), ...randomBytes(rand, 4)])
    case 2: {
      const len = Buffer.alloc(8)
      len.writeBigUInt64BE(BigInt.asUintN(64, BigInt(randInt(rand, 2 ** 32)) << BigInt(randInt(rand, 33))))
      if (rand() < 0.3) len[0] |= 0x80
      return Buffer.concat([Buffer.from([b0, masked | 127]), len, randomBytes(rand, 4)])
    }
    case 3: return Buffer.from([0x80 | (8 + randInt(rand, 8)), masked | randInt(rand, 128), ...randomBytes(rand, 4)])
    default: return Buffer.from([randInt(rand, 16), masked | randInt(rand, 4), ...randomBytes(rand, 4)])
  }
}

function mutate (rand: Rand, input: Buffer): Buffer {
  let b = Buffer.from(input)
  const n = 1 + randInt(rand, 3)
  for (let m = 0; m < n; m++) {
    const at = randInt(rand, b.length + 1)
    switch (randInt(rand, 8)) {
      case 0: if (b.length > 0) b[Math.min(at, b.length - 1)] ^= 1 << randInt(rand, 8); break
      case 1: if (b.length > 0) b[Math.min(at, b.length - 1)] = randInt(rand, 256); break
      case 2: b = Buffer.concat([b.subarray(0, at), randomBytes(rand, 1 + randInt(rand, 8)), b.subarray(at)]); break
      case 3: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + randInt(rand, 16)))]); break
      case 4: b = b.subarray(0, at); break
      case 5: {
        const from = randInt(rand, b.length + 1)
        b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + randInt(rand, 32)), b.subarray(at)])
        break
      }
      case 6: b = Buffer.concat([b.subarray(0, at), hostileHeader(rand), b.subarray(at)]); break
      default: {
        // a byte that often matters: a first or second header byte with one flag changed
        if (b.length > 1) b[randInt(rand, Math.min(2, b.length))] ^= [0x80, 0x40, 0x20, 0x10, 0x08, 0x01][randInt(rand, 6)]
      }
    }
  }
  return b
}

interface Case {
  input: Buffer
  options: RefOptions
  chunks: Buffer[]
}

function makeCase (seed: number): Case {
  const rand = prng(seed)
  const role = rand() < 0.85 ? 'server' : 'client'
  const allowRsv1 = rand() < 0.2
  const maxPayload = rand() < 0.3 ? randInt(rand, 300) : rand() < 0.5 ? 1024 * 1024 : 4096
  const maxFragments = rand() < 0.3 ? 1 + randInt(rand, 4) : 16384
  const kind = rand()
  let input: Buffer
  if (kind < 0.1) input = randomBytes(rand, randInt(rand, 64))
  else if (kind < 0.3) input = validStream(rand, role, allowRsv1)
  else input = mutate(rand, validStream(rand, role, allowRsv1))
  const closeAfter = rand() < 0.15 ? randInt(rand, input.length + 1) : undefined
  // the chunking: whole, byte by byte (small inputs) or random pieces; always a boundary at
  // closeAfter
  const style = rand()
  const points = new Set<number>()
  if (style < 0.15 && input.length < 400) for (let i = 1; i < input.length; i++) points.add(i)
  else if (style >= 0.3) for (let i = 1; i < input.length; i++) if (rand() < 0.05) points.add(i)
  if (closeAfter !== undefined && closeAfter > 0 && closeAfter < input.length) points.add(closeAfter)
  const chunks = cut(input, [...points].sort((a, b) => a - b))
  return { input, options: { role, maxPayload, maxFragments, allowRsv1, closeAfter }, chunks }
}

/** the one buffer every lent chunk is copied into, and scribbled over after receive() */
let lendBuffer = Buffer.alloc(0)

/** Run one case; returns a description of what went wrong, or null. */
function check (c: Case, lend = false): string | null {
  const proto = new WebSocketProtocol({ role: c.options.role, maxPayload: c.options.maxPayload, maxFragments: c.options.maxFragments, allowRsv1: c.options.allowRsv1 })
  const events: ProtocolEvent[] = []
  const out: Buffer[] = []
  let fed = 0
  const maybeClose = (): void => {
    if (c.options.closeAfter !== undefined && fed === c.options.closeAfter) proto.close(1000)
  }
  try {
    maybeClose()
    for (const chunk of c.chunks) {
      fed += chunk.length
      if (lend) {
        if (lendBuffer.length < chunk.length) lendBuffer = Buffer.alloc(chunk.length * 2)
        const lent = lendBuffer.subarray(0, chunk.length)
        chunk.copy(lent)
        proto.receive(lent, true)
        lendBuffer.fill(0xa5) // the core may keep nothing of a lent chunk
      } else {
        proto.receive(chunk)
      }
      events.push(...proto.takeEvents())
      for (const b of proto.takeOutput()) out.push(Buffer.from(b))
      maybeClose()
    }
    for (const b of proto.takeOutput()) out.push(Buffer.from(b))
  } catch (err) {
    return `exception escaped: ${(err as Error)?.stack ?? String(err)}`
  }
  // invariants that hold whatever the reference says
  const fails = events.filter((e): e is Extract<ProtocolEvent, { type: 'fail' }> => e.type === 'fail')
  if (fails.length > 1) return `${fails.length} fail events`
  if (fails.length === 1) {
    const f = fails[0] as Extract<ProtocolEvent, { type: 'fail' }>
    if (events[events.length - 1] !== f) return 'events after the fail event'
    if (!(f.error instanceof ProtocolError)) return 'fail without a ProtocolError'
    if (!KNOWN_CODES.has(f.error.code)) return `unknown error code ${f.error.code}`
    if (![1002, 1007, 1009].includes(f.error.closeCode)) return `close code ${f.error.closeCode}`
    if (CLOSE_CODE_OF[f.error.code] !== f.error.closeCode) return `${f.error.code} with close code ${f.error.closeCode}`
  }
  let frames
  try {
    frames = decodeFrames(out)
  } catch (err) {
    return `output is not a frame stream: ${(err as Error).message}`
  }
  const closes = frames.filter((f) => f.opcode === 8)
  if (closes.length > 1) return `${closes.length} close frames written`
  if (closes.length === 1 && frames[frames.length - 1].opcode !== 8) return 'frames written after the close frame'
  if (frames.some((f) => f.masked !== (c.options.role === 'client') || !f.fin || f.rsv !== 0)) return 'bad output frame flags'
  // differential: the reference model
  const want: RefResult = reference(c.input, c.options)
  const gotEvents = events.map((e) => {
    switch (e.type) {
      case 'message': return { type: 'message', binary: e.binary, compressed: e.compressed, data: e.data.toString('hex') }
      case 'ping': case 'pong': return { type: e.type, data: e.data.toString('hex') }
      case 'close': return { type: 'close', code: e.code, reason: e.reason }
      case 'fail': return { type: 'fail', code: e.error.code }
      case 'end': return { type: 'end' }
    }
    return e
  })
  if (gotEvents.length !== want.events.length) {
    return `events differ:\n  got  ${JSON.stringify(gotEvents).slice(0, 800)}\n  want ${JSON.stringify(want.events).slice(0, 800)}`
  }
  for (let i = 0; i < gotEvents.length; i++) {
    const g = gotEvents[i] as { type: string, code?: string }
    const w = want.events[i]
    const same = w.type === 'fail'
      ? g.type === 'fail' && w.codes.includes(g.code as string)
      : JSON.stringify(g) === JSON.stringify(w)
    if (!same) return `event ${i} differs:\n  got  ${JSON.stringify(g).slice(0, 800)}\n  want ${JSON.stringify(w).slice(0, 800)}`
  }
  // the failure's close frame carries the close code of the error code actually reported
  const failClose = fails.length === 1 ? Buffer.from([fails[0].error.closeCode >> 8, fails[0].error.closeCode & 0xff]).toString('hex') : 'none'
  const wantOutput = want.output.map((f) => f.payload === 'fail' ? { opcode: f.opcode, payload: failClose } : f)
  const gotOutput = frames.map((f) => ({ opcode: f.opcode, payload: f.payload.toString('hex') }))
  if (JSON.stringify(gotOutput) !== JSON.stringify(wantOutput)) {
    return `output differs:\n  got  ${JSON.stringify(gotOutput).slice(0, 800)}\n  want ${JSON.stringify(wantOutput).slice(0, 800)}`
  }
  return null
}

t.test(`fuzz: ${ONLY !== undefined ? `seed ${ONLY}` : `${ITERATIONS} random and mutated streams (base seed ${BASE_SEED})`}`, async (t) => {
  const seeds = ONLY !== undefined ? [ONLY] : Array.from({ length: ITERATIONS }, (_, i) => BASE_SEED + i)
  const tally = { messages: 0, fails: 0, closes: 0, clean: 0 }
  const failures: string[] = []
  const started = Date.now()
  let done = 0
  for (const seed of seeds) {
    const c = makeCase(seed)
    // lent first: lending copies the chunks, giving them hands them over (unmasked in place)
    const lent = check(c, true)
    const problem = lent === null ? check(c) : `lent chunks: ${lent}`
    done++
    if (problem !== null) {
      failures.push(`seed ${seed} (${c.input.length} bytes, ${JSON.stringify(c.options)}):\n  input ${c.input.toString('hex').slice(0, 400)}\n  ${problem}`)
      if (failures.length >= 5) break
      continue
    }
    const ref = reference(c.input, c.options)
    for (const e of ref.events) {
      if (e.type === 'message') tally.messages++
      else if (e.type === 'close') tally.closes++
    }
    if (ref.events.some((e) => e.type === 'fail')) tally.fails++
    else tally.clean++
    if (ITERATIONS > 100000 && done % 100000 === 0) t.comment(`${done} iterations, ${Math.round((Date.now() - started) / 1000)} s, ${JSON.stringify(tally)}`)
  }
  t.same(failures, [], 'every input ends as events only or with one coded failure, as the reference says')
  t.equal(done, seeds.length, 'all iterations ran')
  // the generator reaches both outcomes (so the fuzz is not vacuous)
  if (ONLY === undefined && seeds.length >= 1000) {
    t.ok(tally.fails > seeds.length / 10, `failures reached: ${tally.fails}`)
    t.ok(tally.clean > seeds.length / 10, `clean inputs reached: ${tally.clean}`)
    t.ok(tally.messages > seeds.length / 10, `messages delivered: ${tally.messages}`)
  }
  t.comment(`${done} iterations in ${Date.now() - started} ms: ${JSON.stringify(tally)}`)
})
