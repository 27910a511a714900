// lib/connection/shared-reads.ts: which sockets are switched to the shared read buffer, and that
// the others are left exactly as they were (they keep 'data' events).
import { once } from 'node:events'
import net from 'node:net'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { lendReads, SHARED_READ_SIZE, sharedReadBufferSupported } from '../../lib/connection/shared-reads.js'

async function pair (t: Test): Promise<{ server: net.Socket, client: net.Socket }> {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1')
  const [server] = await once(srv, 'connection') as [net.Socket]
  t.teardown(() => { client.destroy(); server.destroy(); srv.close() })
  return { server, client }
}

t.test('a stream without a TCP handle is not switched', async (t) => {
  const reads: number[] = []
  t.equal(lendReads(new PassThrough(), (n) => { reads.push(n) }), false, 'a PassThrough keeps its own reads')
  t.equal(lendReads(new net.Socket(), (n) => { reads.push(n) }), false, 'an unconnected socket (no handle) too')
  t.same(reads, [])
})

t.test('an accepted TCP socket is switched: reads arrive in the shared buffer, no data events', async (t) => {
  const { server, client } = await pair(t)
  const got: Buffer[] = []
  let sameBuffer = true
  let dataEvents = 0
  server.on('data', () => { dataEvents++ })
  const lent = lendReads(server, function (this: unknown, nread: number, buffer: Buffer) {
    if (buffer.length !== SHARED_READ_SIZE) sameBuffer = false
    got.push(Buffer.from(buffer.subarray(0, nread)))
  })
  t.equal(lent, true)
  server.resume()
  client.write('hello ')
  client.end('world')
  await once(server, 'end')
  t.equal(Buffer.concat(got).toString(), 'hello world', 'every byte, in order')
  t.ok(sameBuffer, 'each read came in the shared buffer')
  t.equal(dataEvents, 0, "no 'data' events")
  t.equal(lendReads(server, () => {}), false, 'a socket already switched is not switched again')
})

t.test('a socket with bytes already buffered by its stream is left alone', async (t) => {
  const { server, client } = await pair(t)
  server.pause()
  client.write('early')
  // let Node read the bytes into the paused stream's buffer
  await new Promise<void>((resolve) => {
    const check = (): void => { if (server.readableLength > 0) resolve(); else setTimeout(check, 2) }
    check()
  })
  t.equal(lendReads(server, () => {}), false, 'switching now would reorder the bytes')
  t.equal(server.read().toString(), 'early', 'the stream still holds them')
})

t.test('a destroyed socket is left alone', async (t) => {
  const { server } = await pair(t)
  server.destroy()
  t.equal(lendReads(server, () => {}), false)
})

t.test('sharedReadBufferSupported() says whether an accepted socket is switched', async (t) => {
  const { server } = await pair(t)
  t.equal(lendReads(server, () => {}), sharedReadBufferSupported())
})

t.test('a handle that refuses the buffer: the socket keeps its own reads, nothing thrown', async (t) => {
  const { server, client } = await pair(t)
  const handle = (server as unknown as { _handle: { useUserBuffer: (b: Uint8Array) => void } })._handle
  handle.useUserBuffer = () => { throw new Error('this Node cannot read into a user buffer') }
  let lent: boolean | undefined
  t.doesNotThrow(() => { lent = lendReads(server, () => { t.fail('no read may reach the shared-buffer callback') }) })
  t.equal(lent, false)
  const got: Buffer[] = []
  server.on('data', (chunk: Buffer) => { got.push(chunk) })
  client.end('still read')
  await once(server, 'end')
  t.equal(Buffer.concat(got).toString(), 'still read', "every byte arrives as 'data' events")
})
