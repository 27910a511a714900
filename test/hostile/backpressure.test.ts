// Outbound backpressure (issue 5): send() reports a backed-up socket, 'drain' and drained()
// follow, bufferedAmount is exact, and maxBufferedAmount applies its policy.
import t from 'tap'
import { once } from 'node:events'
import { WebSocket } from '../../lib/index.js'
import { clientFrame, closeCodeOf, decodeFrames, deadline, rawWebSocket, server, StalledDuplex, tcpPair } from './helpers.js'

// an unmasked server frame of n payload bytes takes 2, 4 or 10 header bytes
const frameBytes = (n: number): number => n + (n < 126 ? 2 : n < 65536 ? 4 : 10)

t.test('send() returns false once bufferedAmount reaches the high-water mark; drain and drained() follow', async (t) => {
  const transport = new StalledDuplex()
  const ws = new WebSocket(transport, { heartbeatInterval: 0 })
  t.equal(ws.bufferedAmount, 0)
  t.equal(ws.send(Buffer.alloc(10_000, 1)), true, 'under the mark: true')
  t.equal(ws.bufferedAmount, frameBytes(10_000), 'bufferedAmount counts header and payload exactly')
  t.equal(ws.send('x'.repeat(10_000)), false, 'over 16 KiB: false')
  t.equal(ws.bufferedAmount, 2 * frameBytes(10_000))
  t.equal(ws.send('tiny'), false, 'still backed up')
  t.equal(ws.bufferedAmount, 2 * frameBytes(10_000) + frameBytes(4))
  let drainedResolved = false
  const drained = ws.drained().then(() => { drainedResolved = true })
  const drainEvent = once(ws, 'drain')
  await Promise.resolve()
  t.equal(drainedResolved, false, 'drained() waits while backed up')
  transport.release()
  await deadline(Promise.all([drained, drainEvent]), 2000, 'drain')
  t.equal(ws.bufferedAmount, 0, 'all handed over')
  t.equal(ws.send('again'), true)
  await ws.drained() // not backed up: resolves at once
  const frames = decodeFrames(transport.bytes()).frames
  t.same(frames.map((f) => [f.opcode, f.payload.length]), [[2, 10_000], [1, 10_000], [1, 4], [1, 5]], 'every accepted byte reached the transport, in order')
  ws.terminate()
})

t.test("maxBufferedAmount with policy 'drop': the message is refused, reported, and never written", async (t) => {
  const transport = new StalledDuplex()
  const ws = new WebSocket(transport, { heartbeatInterval: 0, maxBufferedAmount: 50_000, bufferedAmountPolicy: 'drop' })
  const dropped: number[] = []
  ws.on('dropped', (size: number) => dropped.push(size))
  t.equal(ws.send(Buffer.alloc(30_000, 1)), false)
  let error: (Error & { code?: string }) | null | undefined
  const sent = ws.send(Buffer.alloc(30_000, 2), (err) => { error = err })
  t.equal(sent, false)
  await Promise.resolve()
  t.equal(error?.code, 'FST_ERR_WS_BUFFER_FULL', 'the callback reports the drop')
  t.same(dropped, [30_000], "'dropped' is emitted with the size")
  t.equal(ws.droppedMessages, 1)
  t.equal(ws.bufferedAmount, frameBytes(30_000), 'the dropped bytes were not queued')
  t.equal(ws.readyState, WebSocket.OPEN, 'the connection stays open')
  t.equal(ws.send(Buffer.alloc(10_000, 3)), false, 'a message that fits is accepted (backed up)')
  transport.release()
  await ws.drained()
  const frames = decodeFrames(transport.bytes()).frames
  t.same(frames.map((f) => f.payload[0]), [1, 3], 'only the accepted messages are on the wire')
  ws.terminate()
})

t.test("maxBufferedAmount with policy 'close' (default): close 1008 after the accepted bytes", async (t) => {
  const transport = new StalledDuplex()
  const ws = new WebSocket(transport, { heartbeatInterval: 0, maxBufferedAmount: 50_000, closeTimeout: 100 })
  ws.send(Buffer.alloc(30_000, 1))
  let error: (Error & { code?: string }) | null | undefined
  t.equal(ws.send(Buffer.alloc(30_000, 2), (err) => { error = err }), false)
  await Promise.resolve()
  t.equal(error?.code, 'FST_ERR_WS_BUFFER_FULL')
  t.equal(ws.readyState, WebSocket.CLOSING)
  t.equal(ws.send('after'), false, 'no data after our Close frame')
  const closed = once(ws, 'close')
  transport.release()
  const [code] = await deadline(closed, 2000, 'close (close timeout)')
  t.equal(code, 1006, 'the peer never answered: closed by the close timeout')
  const frames = decodeFrames(transport.bytes()).frames
  t.same(frames.map((f) => f.opcode), [2, 8])
  t.equal(closeCodeOf(frames[1]), 1008)
})

t.test('a message larger than maxBufferedAmount still goes when nothing is buffered', async (t) => {
  const transport = new StalledDuplex()
  const ws = new WebSocket(transport, { heartbeatInterval: 0, maxBufferedAmount: 1000, bufferedAmountPolicy: 'drop' })
  t.equal(ws.send(Buffer.alloc(5000)), true)
  t.equal(ws.bufferedAmount, frameBytes(5000))
  t.equal(ws.send(Buffer.alloc(1)), false, 'but nothing more while it is buffered')
  t.equal(ws.droppedMessages, 1)
  ws.terminate()
})

t.test('a slow reader over TCP: the server closes it with 1008 instead of growing memory', async (t) => {
  let serverSocket: WebSocket | undefined
  let refused = 0
  const { app, port, log } = await server({ heartbeatInterval: 0 }, (app) => {
    app.ws('/flood', { maxBufferedAmount: 1024 * 1024, closeTimeout: 200 }, (socket) => {
      serverSocket = socket
      socket.on('message', () => {
        // bounded: at most 64 MiB offered, far more than loopback buffers hold
        for (let i = 0; i < 1024 && socket.readyState === WebSocket.OPEN; i++) {
          if (!socket.send(Buffer.alloc(64 * 1024, i & 0xff))) {
            if (socket.readyState !== WebSocket.OPEN) refused++
          }
        }
      })
    })
  })
  t.teardown(() => app.close())
  const client = await rawWebSocket(port, '/flood')
  client.socket.pause() // the client does not read
  client.write(clientFrame(0x1, 'go'))
  await deadline(new Promise<void>((resolve) => {
    const check = (): void => { if (serverSocket?.readyState === WebSocket.CLOSING || serverSocket?.readyState === WebSocket.CLOSED) resolve(); else setImmediate(check) }
    check()
  }), 5000, 'the server to start closing')
  t.ok(refused >= 1, 'send() refused the message that crossed the limit')
  t.ok(serverSocket!.bufferedAmount <= 1024 * 1024 + 64 * 1024 + 1024, `bufferedAmount stayed bounded (${serverSocket!.bufferedAmount})`)
  client.socket.resume() // now read everything: the data, then the Close frame
  await client.waitClosed()
  const frames = client.frames()
  const last = frames[frames.length - 1]
  t.equal(last.opcode, 8)
  t.equal(closeCodeOf(last), 1008)
  t.same(log.errors(), [], 'no error-level log')
})

t.test('permessage-deflate: backed up by the compression outbox only, drain and drained() still follow', async (t) => {
  const transport = new StalledDuplex()
  transport.release() // the transport takes everything: only the outbox can back up
  const params = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 }
  const ws = new WebSocket(transport, { heartbeatInterval: 0, perMessageDeflate: { params, threshold: 0 } })
  const drainEvent = once(ws, 'drain')
  let accepted = true
  let lastWritten!: () => void
  const allWritten = new Promise<void>((resolve) => { lastWritten = resolve })
  for (let i = 0; i < 8; i++) accepted = ws.send(Buffer.alloc(8 * 1024, i), i === 7 ? () => lastWritten() : undefined) && accepted
  t.equal(accepted, false, '64 KiB waiting for compression: backed up')
  t.ok(ws.bufferedAmount >= 16 * 1024, 'bufferedAmount counts the outbox')
  await deadline(Promise.all([ws.drained(), drainEvent]), 5000, 'drain after compression')
  t.ok(ws.bufferedAmount < 16 * 1024, `under the high-water mark at 'drain' (${ws.bufferedAmount})`)
  await deadline(allWritten, 5000, 'the last message written')
  t.equal(ws.bufferedAmount, 0)
  const frames = decodeFrames(transport.bytes()).frames
  t.equal(frames.length, 8)
  t.ok(frames.every((f) => f.rsv === 4), 'all compressed (RSV1)')
  ws.terminate()
})

t.test('a peer that sends Pings and never reads: reading pauses, the Pongs stay bounded', async (t) => {
  const maxBufferedAmount = 64 * 1024
  const { ws, client, serverSocket, close } = await tcpPair({ heartbeatInterval: 0, maxBufferedAmount })
  t.teardown(close)
  client.socket.pause() // never reads our Pongs
  const ping = clientFrame(0x9, Buffer.alloc(125, 1))
  const batch = Buffer.concat(Array.from({ length: 64 }, () => ping))
  let written = 0
  // bounded: 64 MiB of Pings at most, yielding so the server (same process) reads meanwhile
  while (written < 64 * 1024 * 1024 && !serverSocket.isPaused()) {
    written += batch.length
    if (!client.socket.write(batch)) await deadline(once(client.socket, 'drain'), 3000, 'client drain')
    else await new Promise((resolve) => setImmediate(resolve))
  }
  t.ok(serverSocket.isPaused(), `the server paused reading after ${written} bytes of Pings`)
  t.ok(written < 64 * 1024 * 1024, 'long before the 64 MiB bound')
  t.ok(ws.bufferedAmount <= maxBufferedAmount + 128 * 1024, `bufferedAmount bounded (${ws.bufferedAmount})`)
  // the peer reads again: Pongs flow, reading resumes, every Ping is answered. A Pong of 125
  // bytes is a 127-byte frame: wait on the byte count, then decode once (decoding all frames
  // again on each of the ~70 arrivals took more than the 20 s deadline on a loaded machine)
  const pings = written / ping.length
  client.socket.on('data', () => {})
  client.socket.resume()
  await client.until(() => client.receivedLength >= pings * (2 + 125), 20_000, `${pings} pongs`)
  const pongs = client.frames().filter((f) => f.opcode === 0xa).length
  t.equal(pongs, pings, 'each Ping answered once reading resumed')
  t.equal(ws.readyState, WebSocket.OPEN)
})

t.test('a producer that awaits drained() streams 16 MiB to a slow reader within maxBufferedAmount', async (t) => {
  const chunk = 64 * 1024
  const total = 256
  let peak = 0
  let finished!: (n: number) => void
  const done = new Promise<number>((resolve) => { finished = resolve })
  let waiting = false
  const { app, port, log } = await server({ heartbeatInterval: 0 }, (app) => {
    app.ws('/stream', { maxBufferedAmount: 256 * 1024 }, async (socket) => {
      let sent = 0
      for (let i = 0; i < total && socket.readyState === WebSocket.OPEN; i++) {
        const ok = socket.send(Buffer.alloc(chunk, i & 0xff))
        sent++
        peak = Math.max(peak, socket.bufferedAmount)
        if (!ok) { waiting = true; await socket.drained() }
      }
      finished(sent)
    })
  })
  t.teardown(() => app.close())
  const client = await rawWebSocket(port, '/stream')
  client.socket.pause() // a reader that has stopped: the kernel buffers fill, the producer waits
  await deadline(new Promise<void>((resolve) => { const c = (): void => { if (waiting) resolve(); else setImmediate(c) }; c() }), 5000, 'the producer to wait')
  client.socket.resume()
  const want = total * (chunk + 4)
  await client.until(() => client.receivedLength >= want, 20_000, 'all the data')
  await client.waitFrames(total)
  t.equal(await deadline(done, 5000, 'the producer'), total, 'every chunk was sent, none refused')
  const frames = client.frames()
  t.equal(frames.length, total)
  t.ok(frames.every((f, i) => f.opcode === 2 && f.payload.length === chunk && f.payload[0] === (i & 0xff)), 'in order, intact')
  t.ok(peak <= 256 * 1024, `bufferedAmount peaked at ${peak}, within maxBufferedAmount`)
  t.same(log.errors(), [])
  client.socket.destroy()
})
