/**
 * The Upgrade header as a list of protocols with optional versions (RFC 9110 §7.8) over a real
 * socket: "foo/2, websocket" upgrades (101, then a working echo), a list without websocket
 * gets 426 with the corrective headers.
 */
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { Op, encodeFrame } from '../helpers/raw-client.js'
import { deadline } from './helpers.js'

/** Send a handshake with the given Upgrade value; resolve with the status line, headers and the socket. */
async function handshake (port: number, upgrade: string): Promise<{ status: number, head: string, socket: net.Socket, rest: Buffer }> {
  const socket = net.connect({ host: '127.0.0.1', port })
  await deadline(once(socket, 'connect'), 'connect')
  socket.write(`GET /echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  let buf = Buffer.alloc(0)
  await deadline(new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk])
      if (buf.includes('\r\n\r\n')) { socket.off('data', onData); resolve() }
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error('closed before the response head')))
  }), 'the response head')
  const end = buf.indexOf('\r\n\r\n')
  const head = buf.subarray(0, end).toString('latin1')
  return { status: Number(head.split(' ')[1]), head, socket, rest: buf.subarray(end + 4) }
}

t.test('Upgrade: foo/2, websocket is a WebSocket upgrade; a list without websocket is 426', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { heartbeatInterval: 0 })
  app.ws('/echo', (socket) => { socket.on('message', (data: Buffer) => socket.send(data.toString())) })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }

  for (const upgrade of ['foo/2, websocket', 'HTTP/2.0, SHTTP/1.3, WebSocket']) {
    const res = await handshake(port, upgrade)
    t.equal(res.status, 101, `${upgrade}: 101`)
    t.match(res.head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/, `${upgrade}: accept value`)
    // the connection works: an echo comes back (unmasked text frame "hi")
    res.socket.write(encodeFrame({ opcode: Op.Text, payload: 'hi' }))
    let got = res.rest
    await deadline(new Promise<void>((resolve) => {
      const check = (): void => { if (got.length >= 4) { res.socket.off('data', onData); resolve() } }
      const onData = (chunk: Buffer): void => { got = Buffer.concat([got, chunk]); check() }
      res.socket.on('data', onData)
      check()
    }), 'the echo')
    t.same([...got.subarray(0, 4)], [0x81, 0x02, 0x68, 0x69], `${upgrade}: echo`)
    res.socket.destroy()
  }

  for (const upgrade of ['foo/2, h2c', 'websocket/13', 'foo/2 websocket']) {
    const res = await handshake(port, upgrade)
    t.equal(res.status, 426, `${upgrade}: 426`)
    t.match(res.head.toLowerCase(), /\r\nupgrade: websocket(\r\n|$)/, `${upgrade}: says which upgrade it needs`)
    res.socket.destroy()
  }
})
