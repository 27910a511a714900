// 'message' listeners are called as EventEmitter#emit calls them: in the order they were added,
// a `once` listener one time, the set fixed when a message is dispatched (a listener added by
// another listener hears the next message, not this one), whether one listener or several.
import { Duplex } from 'node:stream'
import t from 'tap'
import { WebSocket } from '../../lib/index.js'
import { Opcode } from '../../lib/protocol/constants.js'
import { frame } from './helpers.js'

class Sink extends Duplex {
  override _read (): void {}
  override _write (_chunk: Buffer, _encoding: string, cb: () => void): void { cb() }
}

function open (): { ws: WebSocket, receive: (...texts: string[]) => void } {
  const transport = new Sink()
  const ws = new WebSocket(transport, { heartbeatInterval: 0, incompleteMessageTimeout: 0 })
  const receive = (...texts: string[]): void => {
    transport.emit('data', Buffer.concat(texts.map((text) => frame({ opcode: Opcode.Text, payload: text }))))
  }
  return { ws, receive }
}

t.test('one listener, then one added during its call: the new one hears only later messages', async (t) => {
  const { ws, receive } = open()
  const heard: string[] = []
  ws.on('message', function first (data) {
    heard.push(`first:${String(data)}`)
    if (heard.length === 1) ws.on('message', (later) => { heard.push(`second:${String(later)}`) })
  })
  receive('a', 'b')
  t.same(heard, ['first:a', 'first:b', 'second:b'])
})

t.test('a once listener alone hears one message; the listener added next hears the rest', async (t) => {
  const { ws, receive } = open()
  const heard: string[] = []
  ws.once('message', (data) => { heard.push(`once:${String(data)}`) })
  receive('a')
  ws.on('message', (data) => { heard.push(`on:${String(data)}`) })
  receive('b', 'c')
  t.same(heard, ['once:a', 'on:b', 'on:c'])
  t.equal(ws.listenerCount('message'), 1)
})

t.test('several listeners in order; one removed by another during a call still hears that message', async (t) => {
  const { ws, receive } = open()
  const heard: string[] = []
  const third = (data: unknown): void => { heard.push(`third:${String(data)}`) }
  ws.on('message', (data) => { heard.push(`first:${String(data)}`); ws.off('message', third) })
  ws.once('message', (data) => { heard.push(`second:${String(data)}`) })
  ws.on('message', third)
  receive('a', 'b')
  t.same(heard, ['first:a', 'second:a', 'third:a', 'first:b'])
})

t.test('a listener that throws fails the connection once; the others of that message are not called', async (t) => {
  const { ws, receive } = open()
  const heard: string[] = []
  ws.on('error', () => { heard.push('error') })
  ws.on('message', () => { throw new Error('boom') })
  ws.on('message', (data) => { heard.push(`second:${String(data)}`) })
  receive('a')
  t.same(heard.filter((h) => h.startsWith('second')), [], 'the next listener was not called')
})
