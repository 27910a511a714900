// WebSockets over HTTP/2 (RFC 8441) and HTTP/1.1 on one port: one TLS server with `http2: true`
// and `allowHTTP1: true`. GET / is a page whose WebSocket to /echo shares the page's HTTP/2
// connection in browsers that speak RFC 8441 (Chrome, Edge, Firefox); HTTP/1.1 clients (curl
// --http1.1, `ws`) upgrade as usual. /echo echoes text as text and binary as binary.
// Run: node --import tsx examples/http2.ts   (HOST, PORT; TLS_CERT and TLS_KEY are PEM paths,
// without them a self-signed certificate for localhost and 127.0.0.1 is made at start with openssl)
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import websocket from '../lib/index.js'

const PAGE = `<!doctype html><meta charset="utf-8"><title>WebSocket over HTTP/2</title>
<pre id="log"></pre><script>
const log = (line) => { document.getElementById('log').textContent += line + '\\n' }
window.result = (async () => {
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/echo')
  ws.binaryType = 'arraybuffer'
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('WebSocket error')) })
  const replies = []
  const done = new Promise((resolve) => { ws.onmessage = (e) => { replies.push(e.data); if (replies.length === 2) resolve() } })
  ws.send('hello over ' + location.protocol)
  ws.send(new Uint8Array([1, 2, 3, 250]))
  await done
  const text = replies[0]
  const binary = Array.from(new Uint8Array(replies[1]))
  log('text: ' + text)
  log('binary: ' + binary.join(','))
  const closed = new Promise((resolve) => { ws.onclose = (e) => resolve({ code: e.code, wasClean: e.wasClean }) })
  ws.close(1000)
  return { text, binary, close: await closed }
})()
window.result.catch((err) => log('failed: ' + err.message))
</script>`

export interface Tls { key: string | Buffer, cert: string | Buffer }

/** A self-signed certificate for localhost and 127.0.0.1 (needs the openssl command). */
export function selfSignedCertificate (): Tls {
  const dir = mkdtempSync(join(tmpdir(), 'example-h2-'))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '30',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
    return { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function buildHttp2 (tls: Tls) {
  const app = Fastify({
    http2: true,
    https: { allowHTTP1: true, key: tls.key, cert: tls.cert },
    logger: process.env.NODE_ENV === 'test' ? false : { level: process.env.LOG_LEVEL ?? 'info' }
  })
  await app.register(websocket)

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))

  // served over HTTP/2 (extended CONNECT) and HTTP/1.1 (Upgrade) alike
  app.ws('/echo', (socket) => {
    socket.on('message', (data, isBinary) => {
      socket.send(isBinary ? data : data.toString('utf8'))
    })
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const tls = process.env.TLS_CERT !== undefined && process.env.TLS_KEY !== undefined
    ? { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) }
    : selfSignedCertificate()
  const app = await buildHttp2(tls)
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
