// permessage-deflate (RFC 7692): a JSON feed that browsers receive compressed.
// Run: npx tsx examples/compression.ts   then open http://127.0.0.1:3000/ (HOST, PORT from the env)
//
// Compression is off by default (each active compressed connection holds zlib state, about
// 220 KiB with the defaults below); turn it on per plugin or per route.
import Fastify from 'fastify'
import websocket from '../lib/index.js'

const PAGE = `<!doctype html><meta charset="utf-8"><title>compressed feed</title>
<pre id="out"></pre><script>
const ws = new WebSocket('ws://' + location.host + '/feed')
ws.onopen = () => { out.textContent += 'extensions: ' + ws.extensions + '\\n'; ws.send('{"want":20}') }
ws.onmessage = (e) => { out.textContent += e.data.length + ' chars: ' + e.data.slice(0, 60) + '...\\n' }
</script>`

export async function buildCompression () {
  const app = Fastify({ logger: process.env.NODE_ENV === 'test' ? false : { level: process.env.LOG_LEVEL ?? 'info' } })
  await app.register(websocket, {
    // plugin-wide: compress messages of 512 bytes or more, zlib level 3 (fast, good on JSON)
    perMessageDeflate: { threshold: 512, level: 3 }
  })

  app.get('/', async (_request, reply) => reply.type('text/html').send(PAGE))

  // JSON rows: large and repetitive, so they compress well
  app.ws('/feed', (socket) => {
    socket.on('message', (data) => {
      const want = Math.min(Number(JSON.parse(data.toString()).want) || 10, 1000)
      const rows = Array.from({ length: want }, (_, i) => ({ id: i, name: `item-${i}`, price: (i * 37) % 100, tags: ['new', 'sale'] }))
      socket.send({ rows })
    })
  })

  // a route that trades ratio for memory: small windows, no context kept between messages
  app.ws('/lean', {
    perMessageDeflate: { serverMaxWindowBits: 10, clientMaxWindowBits: 10, serverNoContextTakeover: true, clientNoContextTakeover: true, memLevel: 4 }
  }, (socket) => {
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString()))
  })

  // and one that never compresses (already-compressed media, tiny messages)
  app.ws('/raw', { perMessageDeflate: false }, (socket) => {
    socket.on('message', (data, isBinary) => socket.send(isBinary ? data : data.toString()))
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const app = await buildCompression()
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
}
