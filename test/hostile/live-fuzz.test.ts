// Fuzz a live server (issue 5): random valid frame streams, mutated (bit flips, overwritten and
// inserted bytes, truncation, huge lengths), written over real sockets in random chunks, then
// ended with FIN or reset. Each connection must end as messages or one coded failure, exactly
// as test/fuzz/reference.ts (a plain RFC 6455 §5 model) predicts, with well-formed server output,
// one 'close' event, no error-level log, and the server still serving afterwards.
//
// Short run inside `npm test`; long mode on demand:
//   LIVE_FUZZ_ITERATIONS=20000 LIVE_FUZZ_SEED=7 npx tap test/hostile/live-fuzz.test.ts --timeout 0
import t from 'tap'
import { CLOSE_CODE_OF, reference, type RefEvent } from '../fuzz/reference.js'
import { assertServes, clientFrame, decodeFrames, deadline, RawClient, server, upgradeRequest } from './helpers.js'

const ITERATIONS = Number(process.env.LIVE_FUZZ_ITERATIONS ?? 300)
const SEED = Number(process.env.LIVE_FUZZ_SEED ?? 0x5eed)
const CONCURRENCY = 8
const MAX_PAYLOAD = 64 * 1024
const MAX_FRAGMENTS = 16

/** mulberry32: a small seeded PRNG, so any finding replays from its seed and index */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

type Rnd = () => number
const int = (rnd: Rnd, n: number): number => Math.floor(rnd() * n)
const pick = <T>(rnd: Rnd, list: readonly T[]): T => list[int(rnd, list.length)]

function randomBytes (rnd: Rnd, n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = int(rnd, 256)
  return b
}

function randomLength (rnd: Rnd): number {
  return pick(rnd, [0, 1, 2, int(rnd, 20), int(rnd, 125), 125, 126, 127, 200 + int(rnd, 800), 65535, 65536, 70_000, int(rnd, 3000)])
}

function randomText (rnd: Rnd, n: number): string {
  let s = ''
  for (let i = 0; i < n; i++) s += pick(rnd, ['a', 'b', ' ', 'é', '✓', '😀', 'z', '\u0000'])
  return s
}

function mask (rnd: Rnd): Buffer {
  return rnd() < 0.2 ? Buffer.alloc(4) : randomBytes(rnd, 4)
}

/** A stream of valid frames: messages (maybe fragmented), pings, pongs, sometimes a Close. */
function validStream (rnd: Rnd): Buffer {
  const parts: Buffer[] = []
  const n = 1 + int(rnd, 6)
  for (let i = 0; i < n; i++) {
    const kind = int(rnd, 10)
    if (kind < 3) {
      const text = Buffer.from(randomText(rnd, int(rnd, 60)))
      const pieces = rnd() < 0.1 ? 10 + int(rnd, 12) : 1 + int(rnd, 3) // sometimes past maxFragments
      const cuts = [0, ...Array.from({ length: pieces - 1 }, () => int(rnd, text.length + 1)).sort((x, y) => x - y), text.length]
      for (let p = 0; p < pieces; p++) {
        parts.push(clientFrame(p === 0 ? 0x1 : 0x0, text.subarray(cuts[p], cuts[p + 1]), { fin: p === pieces - 1, mask: mask(rnd) }))
        if (rnd() < 0.2) parts.push(clientFrame(0x9, randomBytes(rnd, int(rnd, 10)), { mask: mask(rnd) }))
      }
    } else if (kind < 6) {
      parts.push(clientFrame(0x2, randomBytes(rnd, randomLength(rnd)), { mask: mask(rnd) }))
    } else if (kind < 8) {
      parts.push(clientFrame(0x9, randomBytes(rnd, int(rnd, 126)), { mask: mask(rnd) }))
    } else if (kind < 9) {
      parts.push(clientFrame(0xa, randomBytes(rnd, int(rnd, 20)), { mask: mask(rnd) }))
    } else {
      const body = Buffer.alloc(2)
      body.writeUInt16BE(pick(rnd, [1000, 1001, 1003, 1005, 1006, 1011, 2000, 3000, 4999, 5000]))
      parts.push(clientFrame(0x8, rnd() < 0.2 ? Buffer.alloc(0) : Buffer.concat([body, Buffer.from(randomText(rnd, int(rnd, 10)))]), { mask: mask(rnd) }))
    }
  }
  return Buffer.concat(parts)
}

function mutate (rnd: Rnd, input: Buffer): Buffer {
  let b = Buffer.from(input)
  const count = int(rnd, 4)
  for (let m = 0; m < count && b.length > 0; m++) {
    const at = int(rnd, b.length)
    switch (int(rnd, 7)) {
      case 0: b[at] ^= 1 << int(rnd, 8); break
      case 1: b[at] = int(rnd, 256); break
      case 2: b = b.subarray(0, at); break
      case 3: b = Buffer.concat([b.subarray(0, at), randomBytes(rnd, 1 + int(rnd, 16)), b.subarray(at)]); break
      case 4: b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + int(rnd, 40)), b.subarray(at)]); break
      case 5: b[at] = pick(rnd, [0x7e, 0x7f, 0xfe, 0xff, 0x80, 0x00]); break
      default: b = Buffer.concat([b.subarray(0, at), clientFrame(int(rnd, 16), randomBytes(rnd, int(rnd, 8)), { fin: rnd() < 0.7, rsv: rnd() < 0.1 ? 4 : 0 }), b.subarray(at)])
    }
  }
  return b
}

interface Record { messages: Array<{ binary: boolean, hex: string }>, closes: Array<{ code: number, wasClean: boolean }>, failure: string | undefined }

t.test(`live fuzz: ${ITERATIONS} mutated frame streams over real sockets (seed ${SEED})`, async (t) => {
  const records = new Map<string, Record>()
  const { app, port, log } = await server({ closeTimeout: 500 }, (app) => {
    app.ws('/echo', (socket) => { socket.on('message', (d: Buffer, b: boolean) => socket.send(b ? d : d.toString())) })
    app.ws('/fuzz', { maxPayload: MAX_PAYLOAD, maxFragments: MAX_FRAGMENTS }, (socket, request) => {
      const record: Record = { messages: [], closes: [], failure: undefined }
      records.set((request.query as { id: string }).id, record)
      socket.on('message', (data: Buffer, binary: boolean) => {
        record.messages.push({ binary, hex: data.toString('hex') })
        socket.send(binary ? data : data.toString())
      })
      socket.on('close', (code: number, _reason: Buffer, wasClean: boolean) => {
        record.closes.push({ code, wasClean })
        record.failure = socket.failure?.code
      })
    })
  })
  t.teardown(() => app.close())

  const problems: string[] = []
  const outcomes = { messages: 0, fail: 0, close: 0, incomplete: 0, reset: 0 }
  const failCodes = new Map<string, number>()

  async function one (index: number): Promise<void> {
    const rnd = prng(SEED * 1_000_003 + index)
    const input = rnd() < 0.1 ? randomBytes(rnd, int(rnd, 200)) : mutate(rnd, validStream(rnd))
    const reset = rnd() < 0.15
    const id = String(index)
    const where = `#${index} (seed ${SEED}) input ${input.subarray(0, 64).toString('hex')}${input.length > 64 ? '...' : ''}`
    const client = await RawClient.connect(port)
    client.write(upgradeRequest(`/fuzz?id=${id}`))
    await client.response()
    // random chunking, each chunk handed to the kernel before the next
    let o = 0
    while (o < input.length && !client.closed) {
      const n = 1 + int(rnd, rnd() < 0.3 ? 8 : 4096)
      await new Promise<void>((resolve) => client.socket.write(input.subarray(o, o + n), () => resolve()))
      o += n
    }
    if (reset) client.socket.resetAndDestroy()
    else if (!client.closed) client.socket.end()
    await client.waitClosed(10_000)
    await deadline(new Promise<void>((resolve) => {
      const check = (): void => { if ((records.get(id)?.closes.length ?? 0) > 0) resolve(); else setImmediate(check) }
      check()
    }), 10_000, `the server's close of ${where}`)
    await new Promise<void>((resolve) => setImmediate(resolve))
    const record = records.get(id)!
    records.delete(id)
    if (record.closes.length !== 1) problems.push(`${where}: 'close' emitted ${record.closes.length} times`)

    const expected = reference(input, { role: 'server', maxPayload: MAX_PAYLOAD, maxFragments: MAX_FRAGMENTS, allowRsv1: false })
    const expectedMessages = expected.events.filter((e): e is Extract<RefEvent, { type: 'message' }> => e.type === 'message')
    const last = expected.events[expected.events.length - 1]
    outcomes.messages += expectedMessages.length
    const got = record.messages
    const { code, wasClean } = record.closes[0]

    if (reset) {
      outcomes.reset++
      // the input was maybe cut short: what arrived is a prefix of what the model predicts
      if (got.length > expectedMessages.length || got.some((m, i) => m.hex !== expectedMessages[i].data || m.binary !== expectedMessages[i].binary)) {
        problems.push(`${where}: messages are not a prefix of the model's`)
      }
      if (record.failure !== undefined && (last?.type !== 'fail' || !last.codes.includes(record.failure))) {
        problems.push(`${where}: failure ${record.failure} not predicted`)
      }
      return
    }

    if (got.length !== expectedMessages.length || got.some((m, i) => m.hex !== expectedMessages[i].data || m.binary !== expectedMessages[i].binary)) {
      problems.push(`${where}: messages differ from the model (${got.length} vs ${expectedMessages.length})`)
    }
    let expectedClose: number | undefined
    if (last?.type === 'fail') {
      outcomes.fail++
      if (record.failure === undefined || !last.codes.includes(record.failure)) problems.push(`${where}: failure ${record.failure} not in ${last.codes.join('|')}`)
      else failCodes.set(record.failure, (failCodes.get(record.failure) ?? 0) + 1)
      expectedClose = record.failure === undefined ? undefined : CLOSE_CODE_OF[record.failure]
      if (code !== expectedClose || wasClean) problems.push(`${where}: close event ${code}/${wasClean} after failure ${record.failure}`)
    } else if (last?.type === 'close') {
      outcomes.close++
      if (record.failure !== undefined || code !== last.code || !wasClean) problems.push(`${where}: close event ${code}/${wasClean}/${record.failure}, model ${last.code}`)
      expectedClose = last.code === 1005 ? undefined : last.code
    } else {
      outcomes.incomplete++
      if (record.failure !== undefined || code !== 1006 || wasClean) problems.push(`${where}: ended without Close, got ${code}/${wasClean}/${record.failure}`)
    }

    // the server's bytes: well-formed, unmasked frames, nothing after one Close frame
    const { frames, used } = decodeFrames(client.body())
    if (used !== client.body().length) problems.push(`${where}: ${client.body().length - used} trailing bytes from the server`)
    const control = frames.filter((f) => f.opcode >= 8)
    const data = frames.filter((f) => f.opcode < 8)
    if (frames.some((f) => f.masked || f.rsv !== 0 || !f.fin || ![1, 2, 8, 9, 10].includes(f.opcode))) problems.push(`${where}: a malformed server frame`)
    const closeIndex = frames.findIndex((f) => f.opcode === 8)
    if (closeIndex !== -1 && closeIndex !== frames.length - 1) problems.push(`${where}: frames after the server's Close`)
    const wantControl = expected.output.map((f) => f.opcode === 8 && f.payload === 'fail'
      ? `8:${expectedClose === undefined ? '' : Buffer.from([expectedClose >> 8, expectedClose & 0xff]).toString('hex')}`
      : `${f.opcode}:${f.payload}`)
    const gotControl = control.map((f) => `${f.opcode}:${f.opcode === 8 ? f.payload.subarray(0, 2).toString('hex') : f.payload.toString('hex')}`)
    if (gotControl.join() !== wantControl.join()) problems.push(`${where}: control frames ${gotControl.join()} but the model says ${wantControl.join()}`)
    // echoes: in order, each one a message the server received (one read with a Close may drop the rest)
    let m = 0
    for (const f of data) {
      while (m < got.length && got[m].hex !== f.payload.toString('hex')) m++
      if (m === got.length) { problems.push(`${where}: an echo that is no received message`); break }
      m++
    }
  }

  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < ITERATIONS) await one(next++)
  }))

  t.same(problems.slice(0, 20), [], 'every stream ended as the model predicts')
  t.equal(problems.length, 0)
  t.ok(outcomes.fail > 0 && outcomes.close > 0 && outcomes.incomplete > 0 && outcomes.messages > 0, 'the run covered failures, clean closes, cut streams and messages')
  t.comment(`outcomes ${JSON.stringify(outcomes)}; failures ${JSON.stringify(Object.fromEntries(failCodes))}`)
  t.equal(app.websocketConnections.size, 0, 'no connection left behind')
  t.same(log.errors(), [], 'no error-level log')
  t.equal(await assertServes(port), 'still alive')
})
