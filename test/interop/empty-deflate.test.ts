/**
 * Empty messages under permessage-deflate (RFC 7692 §7.2.1, §7.2.3.6) with clients written by
 * others: `ws` and Python's `websockets` (run as a child process). Every message, empty ones
 * included, is compressed both ways (threshold 0 on both ends): an empty message first, after a
 * non-empty one, twice in a row, as text and as binary, with context takeover and without.
 */
import { execFile } from 'node:child_process'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import websocket, { type WebSocket } from '../../lib/index.js'
import { deadline } from './helpers.js'

interface Message { binary: boolean, hex: string }

const SEQUENCE: Message[] = [
  { binary: false, hex: '' },
  { binary: false, hex: Buffer.from('Hello').toString('hex') },
  { binary: false, hex: '' },
  { binary: false, hex: '' },
  { binary: true, hex: '' },
  { binary: true, hex: '010203' },
  { binary: true, hex: '' },
  { binary: false, hex: Buffer.from('é€'.repeat(1000)).toString('hex') },
  { binary: false, hex: '' }
]

const MODES = [
  { name: 'context takeover', path: '/takeover', extensions: 'permessage-deflate' },
  { name: 'no context takeover', path: '/no-takeover', extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' }
]

interface Server { app: FastifyInstance, url: string, received: Message[][] }

/** Echo routes compressing every message (threshold 0); what each connection received is kept. */
async function startServer (): Promise<Server> {
  const app = Fastify()
  await app.register(websocket, { heartbeatInterval: 0 })
  const received: Message[][] = []
  const echo = (socket: WebSocket): void => {
    const got: Message[] = []
    received.push(got)
    socket.on('message', (data: Buffer, binary: boolean) => {
      got.push({ binary, hex: data.toString('hex') })
      socket.send(binary ? data : data.toString('utf8'))
    })
  }
  app.ws('/takeover', { perMessageDeflate: { threshold: 0 } }, echo)
  app.ws('/no-takeover', { perMessageDeflate: { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true } }, echo)
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}`, received }
}

for (const mode of MODES) {
  t.test(`ws client: empty messages compressed both ways (${mode.name})`, async (t) => {
    const srv = await startServer()
    t.teardown(() => srv.app.close())
    const takeover = mode.path === '/takeover'
    const client = new WsClient(srv.url + mode.path, {
      perMessageDeflate: { threshold: 0, serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover }
    })
    const messages: Message[] = []
    const waiters: Array<() => void> = []
    client.on('message', (data: Buffer, isBinary: boolean) => {
      messages.push({ binary: isBinary, hex: data.toString('hex') })
      waiters.shift()?.()
    })
    const closed = new Promise<number>((resolve) => client.once('close', resolve))
    let answer: string | string[] | undefined
    client.once('upgrade', (res) => { answer = res.headers['sec-websocket-extensions'] })
    await deadline(new Promise((resolve, reject) => { client.once('open', resolve); client.once('error', reject) }), 'ws open')
    t.equal(answer, mode.extensions, 'negotiated')
    for (const [i, m] of SEQUENCE.entries()) {
      const echoed = new Promise<void>((resolve) => waiters.push(resolve))
      const data = Buffer.from(m.hex, 'hex')
      client.send(m.binary ? data : data.toString('utf8'), { binary: m.binary, compress: true })
      // a connection that fails instead rejects with its close code
      await deadline(Promise.race([echoed, closed.then((code) => { throw new Error(`closed with ${code} at message ${i}`) })]), `echo ${i}`)
    }
    t.same(messages, SEQUENCE, 'ws received each message as sent')
    t.same(srv.received[0], SEQUENCE, 'the server received each message as sent')
    client.close(1000)
    t.equal(await deadline(closed, 'ws close'), 1000)
  })
}

// Python's websockets, asyncio API (present in every version from 10 on); prints one JSON line
const PYTHON_CLIENT = `
import asyncio, json, sys
import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

async def main():
    url, takeover, seq = sys.argv[1], sys.argv[2] == 'takeover', json.loads(sys.argv[3])
    ext = ClientPerMessageDeflateFactory(server_no_context_takeover=not takeover,
                                         client_no_context_takeover=not takeover)
    received = []
    async with websockets.connect(url, extensions=[ext], compression=None, open_timeout=10, close_timeout=5) as ws:
        for m in seq:
            data = bytes.fromhex(m['hex'])
            await ws.send(data if m['binary'] else data.decode('utf-8'))
            r = await asyncio.wait_for(ws.recv(), 10)
            received.append({'binary': isinstance(r, bytes), 'hex': (r if isinstance(r, bytes) else r.encode('utf-8')).hex()})
        extensions = ws.response_headers.get('Sec-WebSocket-Extensions')
    print(json.dumps({'extensions': extensions, 'received': received}))

asyncio.run(main())
`

function run (file: string, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr: err !== null && typeof err.code !== 'number' ? `${err.message}\n${stderr}` : stderr })
    })
  })
}

/** The first python3 that imports `websockets`: Debian's (python3-websockets), then PATH's. */
async function findPython (): Promise<string | null> {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    if ((await run(candidate, ['-c', 'import websockets'])).code === 0) return candidate
  }
  return null
}

t.test('Python websockets client: empty messages compressed both ways', async (t) => {
  const python = await findPython()
  if (python === null) {
    t.fail('python3 with the websockets module is required for this interop test: install the Debian package python3-websockets (.ci/run does)')
    return
  }
  const srv = await startServer()
  t.teardown(() => srv.app.close())
  for (const [i, mode] of MODES.entries()) {
    const result = await run(python, ['-c', PYTHON_CLIENT, srv.url + mode.path, mode.path === '/takeover' ? 'takeover' : 'no-takeover', JSON.stringify(SEQUENCE)])
    t.equal(result.code, 0, `${mode.name}: the Python client ran through (stderr: ${result.stderr.trim().split('\n').slice(-3).join(' | ')})`)
    if (result.code !== 0) continue
    const out = JSON.parse(result.stdout) as { extensions: string, received: Message[] }
    t.equal(out.extensions, mode.extensions, `${mode.name}: negotiated`)
    t.same(out.received, SEQUENCE, `${mode.name}: Python received each message as sent`)
    t.same(srv.received[i], SEQUENCE, `${mode.name}: the server received each message as sent`)
  }
})
