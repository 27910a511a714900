// Helpers of the production tests: a listening app, ws clients that open or fail, channel capture.
import diagnosticsChannel from 'node:diagnostics_channel'
import type { FastifyInstance } from 'fastify'
import { WebSocket as WsClient } from 'ws'
import { deadline } from '../plugin/helpers.js'

export async function listening (app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return (app.server.address() as { port: number }).port
}

export function openClient (url: string, options?: ConstructorParameters<typeof WsClient>[2]): Promise<WsClient> {
  const ws = new WsClient(url, options)
  return deadline(new Promise((resolve, reject) => { ws.once('open', () => resolve(ws)); ws.once('error', reject) }), 'the client to open')
}

/** The HTTP status of a refused upgrade (ws' 'unexpected-response'). */
export function refusedStatus (url: string, options?: ConstructorParameters<typeof WsClient>[2]): Promise<{ status: number, body: string }> {
  const ws = new WsClient(url, options)
  return deadline(new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('the upgrade was accepted')))
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
  }), 'the refused upgrade')
}

export function clientClosed (ws: WsClient): Promise<{ code: number, reason: string }> {
  return deadline(new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))), 'the client to close')
}

/** Subscribe to a channel for the test's duration; the messages it received. */
export function capture (t: { teardown (fn: () => void): void }, name: string): unknown[] {
  const got: unknown[] = []
  const listener = (message: unknown): void => { got.push(message) }
  diagnosticsChannel.subscribe(name, listener)
  t.teardown(() => diagnosticsChannel.unsubscribe(name, listener))
  return got
}
