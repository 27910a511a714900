// examples/http2.ts run as the README says (node --import tsx), with and without TLS_CERT/TLS_KEY:
// the page over HTTP/2, /echo over an extended CONNECT and over an HTTP/1.1 upgrade, same port.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import WS from 'ws'
import { binary, expectBinary, expectClose, expectText, RawWebSocket, text } from '../helpers/raw-client.js'
import { deadline } from '../plugin/helpers.js'
import { h2connect, h2request, selfSigned } from './helpers.js'

/**
 * Start the example on port 0; resolves with its origin once it logs that it listens. The deadline
 * (120 s) is for a child that hangs: loading tsx and fastify and making a certificate took over
 * 30 s on a loaded machine.
 */
async function runExample (t: Test, env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/http2.ts'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => { child.kill() })
  let out = ''
  return deadline(new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const match = /Server listening at (https:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (match !== null) resolve(match[1])
    })
    child.once('exit', (code) => reject(new Error(`example exited with ${String(code)}: ${out}`)))
  }), 'the example to listen', 120_000)
}

async function exercise (t: Test, origin: string): Promise<string> {
  const { session } = await h2connect(origin)
  t.teardown(() => session.close())
  const page = await h2request(session, { ':path': '/' })
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /new WebSocket/)
  const c = await RawWebSocket.connectH2(session, '/echo')
  await c.send(text('héllo'), binary(Buffer.from([0, 1, 255])))
  t.same(await c.next(2), [expectText('héllo'), expectBinary(Buffer.from([0, 1, 255]))], 'HTTP/2: text as text, binary as binary')
  t.same(await c.closeAndRest(), [expectClose(1000)])
  const ws = new WS(`${origin.replace('https', 'wss')}/echo`, { rejectUnauthorized: false })
  await deadline(once(ws, 'open'), 'the HTTP/1.1 upgrade')
  const fingerprint = new X509Certificate((ws as unknown as { _socket: import('node:tls').TLSSocket })._socket.getPeerCertificate(true).raw).fingerprint256
  ws.send(Buffer.from([9, 8]))
  const [data, isBinary] = await deadline(once(ws, 'message'), 'the echo') as [Buffer, boolean]
  t.same([[...data], isBinary], [[9, 8], true], 'HTTP/1.1: binary as binary')
  ws.close()
  await deadline(once(ws, 'close'), 'the close')
  return fingerprint
}

t.test('with TLS_CERT and TLS_KEY: serves that certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'example-h2-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { key, cert } = selfSigned()
  writeFileSync(join(dir, 'key.pem'), key)
  writeFileSync(join(dir, 'cert.pem'), cert)
  const origin = await runExample(t, { TLS_CERT: join(dir, 'cert.pem'), TLS_KEY: join(dir, 'key.pem') })
  const served = await exercise(t, origin)
  t.equal(served, new X509Certificate(cert).fingerprint256)
})

t.test('without them: a self-signed certificate for localhost and 127.0.0.1 made at start', async (t) => {
  const origin = await runExample(t, {})
  const served = await exercise(t, origin)
  t.not(served, new X509Certificate(selfSigned().cert).fingerprint256, 'its own certificate')
})
