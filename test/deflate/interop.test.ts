// permessage-deflate with the `ws` client: each offer variant (Autobahn 13.* style) carrying
// payloads of many sizes and fragmentations (Autobahn 12.* style), kept small and fast.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { WebSocket as WsClient, type PerMessageDeflateOptions as WsDeflateOptions } from 'ws'
import type { PerMessageDeflateOptions } from '../../lib/connection/deflate.js'
import { deadline, frame, pmdCompress, pmdInflate, rawConnect, startServer } from './helpers.js'

const SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
/** fragment sizes (0 = one frame), Autobahn 12.x/13.x style */
const FRAGMENTS = [0, 256, 4096]

function jsonText (n: number): string {
  let s = ''
  let i = 0
  while (s.length < n) s += JSON.stringify({ id: i, name: `user-${i % 97}`, tags: ['a', 'bb', 'ccc'], ok: i % 3 === 0, v: (i++ * 7919) % 1000 }) + ','
  return s.slice(0, n)
}
function humanText (n: number): string {
  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'émigré', 'naïve', '✓']
  const parts: string[] = []
  let bytes = 0
  for (let i = 0; bytes < n; i++) {
    const w = words[(i * 13) % words.length] + ' '
    parts.push(w)
    bytes += Buffer.byteLength(w)
  }
  return parts.join('')
}
function patterned (n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = ((i >> 4) * 37 + (i & 15)) & 0xff
  return b
}

interface Variant {
  name: string
  client: WsDeflateOptions
  server: PerMessageDeflateOptions
  /** expected Sec-WebSocket-Extensions answer, as ws exposes it */
  expect: string
}

// ws formats its offer from these options; the server answers by RFC 7692
const VARIANTS: Variant[] = [
  { name: '13.1 default offer (client_max_window_bits)', client: {}, server: {}, expect: 'permessage-deflate' },
  { name: '13.2 no context takeover both ways', client: { serverNoContextTakeover: true, clientNoContextTakeover: true }, server: {}, expect: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' },
  { name: '13.3 client window 9', client: { clientMaxWindowBits: 9 }, server: {}, expect: 'permessage-deflate' },
  { name: '13.4 client window 15', client: { clientMaxWindowBits: 15 }, server: {}, expect: 'permessage-deflate' },
  { name: '13.5 no context takeover, windows 9', client: { clientNoContextTakeover: true, clientMaxWindowBits: 9, serverMaxWindowBits: 9 }, server: {}, expect: 'permessage-deflate; client_no_context_takeover; server_max_window_bits=9' },
  { name: '13.6 no context takeover, windows 15', client: { serverNoContextTakeover: true, clientMaxWindowBits: 15, serverMaxWindowBits: 15 }, server: {}, expect: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=15' },
  { name: 'server restricts: window 10 both ways, no takeover', client: {}, server: { serverMaxWindowBits: 10, clientMaxWindowBits: 10, serverNoContextTakeover: true, clientNoContextTakeover: true }, expect: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10' },
  { name: 'server level 1, memLevel 4', client: {}, server: { level: 1, memLevel: 4 }, expect: 'permessage-deflate' }
]

async function open (url: string, options: WsDeflateOptions): Promise<WsClient> {
  const client = new WsClient(url, { perMessageDeflate: { ...options, threshold: 0 } })
  await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'open')
  return client
}

function sendFragmented (client: WsClient, data: Buffer | string, fragment: number): void {
  const binary = typeof data !== 'string'
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  if (fragment === 0 || bytes.length <= fragment) {
    client.send(data, { binary, compress: true })
    return
  }
  for (let o = 0; o < bytes.length; o += fragment) {
    client.send(bytes.subarray(o, o + fragment), { binary, compress: true, fin: o + fragment >= bytes.length })
  }
}

for (const variant of VARIANTS) {
  t.test(variant.name, async (t) => {
    const srv = await startServer({ perMessageDeflate: { threshold: 0, ...variant.server }, maxPayload: 1 << 20 })
    t.teardown(() => srv.app.close())
    const client = await open(`ws://127.0.0.1:${srv.port}/echo`, variant.client)
    t.equal(client.extensions, 'permessage-deflate', 'negotiated (ws lists extension names only)')
    t.equal(srv.sockets[0].extensions, variant.expect, 'the answered parameters')
    const sent: Array<Buffer | string> = []
    for (const size of SIZES) {
      for (const fragment of FRAGMENTS) {
        // 256-byte fragments only up to 16 KiB: ws compresses each fragment in its own zlib job
        if (fragment === 256 && size > 16384) continue
        sent.push(jsonText(size), humanText(size), patterned(size), randomBytes(size))
        for (const m of sent.slice(-4)) sendFragmented(client, m, fragment)
      }
    }
    const got: Array<Buffer | string> = []
    await deadline(new Promise<void>((resolve) => {
      client.on('message', (data: Buffer, binary: boolean) => {
        got.push(binary ? data : data.toString('utf8'))
        if (got.length === sent.length) resolve()
      })
    }), 'all echoes', 30_000)
    let same = 0
    for (let i = 0; i < sent.length; i++) {
      const a = sent[i]; const b = got[i]
      if (typeof a === 'string' ? a === b : Buffer.isBuffer(b) && a.equals(b)) same++
    }
    t.equal(same, sent.length, `${sent.length} messages echoed intact and in order`)
    const closed = new Promise<number>((resolve) => client.once('close', (code: number) => resolve(code)))
    client.close(1000)
    t.equal(await deadline(closed, 'close'), 1000)
  })
}

t.test('13.7 style: several offers in one header, the first acceptable one is used', async (t) => {
  const srv = await startServer({ perMessageDeflate: { threshold: 0 } })
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/echo',
    'permessage-deflate; server_max_window_bits=8, permessage-deflate; client_no_context_takeover; server_max_window_bits=9, permessage-deflate')
  t.equal(client.headers['sec-websocket-extensions'], 'permessage-deflate; client_no_context_takeover; server_max_window_bits=9')
  const text = jsonText(20_000)
  client.send(frame(0x1, pmdCompress(text, { windowBits: 9 }), { rsv1: true }))
  const f = await client.frame(0)
  t.equal(f.rsv, 4)
  t.equal(pmdInflate(f.payload).toString(), text)
  client.socket.destroy()
})

t.test('a route can turn compression off, or change it, under a plugin that enables it', async (t) => {
  const mine: Array<{ extensions: string }> = []
  const srv = await startServer({ perMessageDeflate: { threshold: 0 } }, (app) => {
    app.ws('/plain', { perMessageDeflate: false }, (socket) => { socket.on('message', (d: Buffer) => socket.send(d.toString())) })
    app.ws('/narrow', { perMessageDeflate: { serverMaxWindowBits: 9 } }, (socket) => { mine.push(socket); socket.on('message', (d: Buffer) => socket.send(d.toString())) })
    app.get('/opt', { websocket: true, ws: { perMessageDeflate: { serverNoContextTakeover: true } } } as never, ((socket: { extensions: string, on: (e: string, f: (d: Buffer) => void) => void, send: (s: string) => void }) => {
      mine.push(socket)
      socket.on('message', (d: Buffer) => socket.send(d.toString()))
    }) as never)
  })
  t.teardown(() => srv.app.close())
  const plain = await open(`ws://127.0.0.1:${srv.port}/plain`, {})
  t.equal(plain.extensions, '', 'off on this route')
  plain.close()
  const narrow = await open(`ws://127.0.0.1:${srv.port}/narrow`, { serverMaxWindowBits: 12 })
  t.equal(mine[0].extensions, 'permessage-deflate; server_max_window_bits=9')
  const echoed = new Promise<string>((resolve) => narrow.once('message', (d: Buffer) => resolve(d.toString())))
  narrow.send(jsonText(50_000))
  t.equal(await deadline(echoed, 'echo'), jsonText(50_000))
  narrow.close()
  const opt = await open(`ws://127.0.0.1:${srv.port}/opt`, {})
  t.equal(opt.extensions, 'permessage-deflate')
  t.equal(mine[1].extensions, 'permessage-deflate; server_no_context_takeover')
  opt.close()
})

t.test('client_max_window_bits=8: a client compressing with zlib (which uses 9 bits for 8) is read', async (t) => {
  const srv = await startServer({ perMessageDeflate: { threshold: 0, clientMaxWindowBits: 8 } })
  t.teardown(() => srv.app.close())
  const client = await rawConnect(srv.port, '/echo', 'permessage-deflate; client_max_window_bits')
  t.equal(client.headers['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits=8')
  const text = humanText(30_000)
  client.send(frame(0x1, pmdCompress(text, { windowBits: 8 }), { rsv1: true }))
  client.send(frame(0x1, pmdCompress(text, { windowBits: 8 }), { rsv1: true }))
  const a = await client.frame(0)
  const b = await client.frame(1)
  t.equal(pmdInflate(a.payload).toString(), text)
  t.ok(b.payload.length > 0)
  client.socket.destroy()
})
