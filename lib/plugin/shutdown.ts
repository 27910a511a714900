/**
 * Graceful shutdown of one registration. On `app.close()`, in Fastify's preClose phase (before
 * `server.close()`, which would otherwise wait for the upgraded sockets): stop routing upgrades,
 * run the user's `preClose`, then close every connection still open with 1001 and wait until
 * each one has closed (a silent peer is dropped after its `closeTimeout`).
 */
import type { Server as NetServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { CloseCode } from '../protocol/constants.js'
import type { PreCloseHook } from './options.js'
import type { PluginState } from './route.js'
import { stopUpgrades } from './upgrade.js'
import { stopExtendedConnect } from './http2.js'

export interface Shutdown {
  /** the servers whose upgrades this registration routes */
  servers: readonly NetServer[]
  preClose: PreCloseHook | undefined
}

export function addShutdownHook (fastify: FastifyInstance, state: PluginState, shutdown: Shutdown): void {
  fastify.addHook('preClose', (done) => {
    state.closing = true
    for (const server of shutdown.servers) {
      stopUpgrades(server)
      stopExtendedConnect(server)
    }
    runPreClose(fastify, shutdown.preClose, () => { closeConnections(state, done) })
  })
}

/** The user's hook: async, or with a `done` callback when it declares a parameter. Never blocks the close on an error. */
function runPreClose (fastify: FastifyInstance, hook: PreCloseHook | undefined, next: () => void): void {
  if (hook === undefined) { next(); return }
  let finished = false
  const finish = (err?: unknown): void => {
    if (finished) return
    finished = true
    // the connections are closed all the same: a failed goodbye must not keep the app open
    if (err !== undefined && err !== null) fastify.log.error({ err }, 'websocket preClose failed')
    next()
  }
  try {
    const result: unknown = hook.call(fastify, finish)
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(() => { finish() }, (err: unknown) => { finish(err ?? new Error('preClose rejected')) })
    } else if (hook.length === 0) {
      finish()
    }
  } catch (err) {
    finish(err ?? new Error('preClose threw'))
  }
}

function closeConnections (state: PluginState, done: () => void): void {
  const open = [...state.connections]
  if (open.length === 0) { done(); return }
  let pending = open.length
  const closed = (): void => { if (--pending === 0) done() }
  for (const ws of open) {
    if (ws.readyState === 3) { closed(); continue }
    ws.once('close', closed)
    // RFC 6455 §7.4.1: 1001 "indicates that an endpoint is "going away", such as a server going down"
    if (ws.readyState === 1) ws.close(CloseCode.GoingAway)
  }
}
