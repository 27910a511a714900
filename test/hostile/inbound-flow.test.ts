// Inbound flow control (issue 5): a flood at a consumer that does not keep up pauses reading
// from the socket, memory stays bounded, and every accepted message is delivered in order.
import t from 'tap'
import { WebSocket } from '../../lib/index.js'
import { clientFrame, deadline, tcpPair } from './helpers.js'

const MESSAGE = 1024
const MAX_FLOOD = 64 * 1024 * 1024

function numbered (i: number): Buffer {
  const b = Buffer.alloc(MESSAGE, i & 0xff)
  b.writeUInt32BE(i, 0)
  return b
}

/**
 * Write numbered 1 KiB messages until the client's kernel buffers are full (write() returns
 * false): that only happens when the server stopped reading. Returns how many were written.
 */
function floodUntilBlocked (write: (b: Buffer) => boolean): number {
  let i = 0
  while (i * MESSAGE < MAX_FLOOD) {
    if (!write(clientFrame(0x2, numbered(i++)))) return i
  }
  return -1
}

function gate () {
  let open!: () => void
  const promise = new Promise<void>((resolve) => { open = resolve })
  return { promise, open }
}

for (const consumer of ['async iterator', 'async listener'] as const) {
  t.test(`${consumer}: a flood at a stalled consumer pauses reading; nothing is lost`, async (t) => {
    const { ws, client, serverSocket, close } = await tcpPair({ heartbeatInterval: 0, maxQueuedMessages: 16 })
    t.teardown(close)
    const stall = gate()
    const got: number[] = []
    let firstArrived!: () => void
    const first = new Promise<void>((resolve) => { firstArrived = resolve })
    if (consumer === 'async iterator') {
      void (async () => {
        for await (const data of ws) {
          got.push((data as Buffer).readUInt32BE(0))
          firstArrived()
          await stall.promise
        }
      })()
    } else {
      ws.on('message', async (data: Buffer) => {
        got.push(data.readUInt32BE(0))
        firstArrived()
        await stall.promise
      })
    }
    const written = floodUntilBlocked((b) => client.socket.write(b))
    t.not(written, -1, 'the client was blocked: the server stopped reading')
    await deadline(first, 2000, 'the first message')
    t.ok(serverSocket.isPaused(), 'the server paused the socket')
    t.ok(serverSocket.bytesRead < 512 * 1024, `the server read a bounded amount (${serverSocket.bytesRead} of ${written * (MESSAGE + 8)} bytes written)`)
    // the consumer catches up: reading resumes and every message arrives, in order
    stall.open()
    const total = written + 100
    for (let i = written; i < total; i++) client.socket.write(clientFrame(0x2, numbered(i)))
    await deadline(new Promise<void>((resolve) => {
      const check = (): void => { if (got.length >= total) resolve(); else setImmediate(check) }
      check()
    }), 20_000, `${total} messages`)
    t.equal(got.length, total)
    t.ok(got.every((n, i) => n === i), 'in order, none lost or repeated')
    t.equal(ws.readyState, WebSocket.OPEN)
  })
}

t.test('a rejected async listener is a listener error (1011), not an unhandled rejection', async (t) => {
  const errors: unknown[] = []
  const { ws, client, close } = await tcpPair({ heartbeatInterval: 0, onListenerError: (err) => errors.push(err) })
  t.teardown(close)
  ws.on('message', async () => { throw new Error('boom') })
  client.write(clientFrame(0x1, 'hi'))
  const [frame] = await client.waitFrames(1)
  t.equal(frame.opcode, 8)
  t.equal(frame.payload.readUInt16BE(0), 1011)
  t.equal(frame.payload.length, 2, 'no internal detail on the wire')
  t.equal(errors.length, 1)
  t.equal((errors[0] as Error).message, 'boom')
})
