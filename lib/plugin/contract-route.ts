/**
 * A route declared with a `contract`: its schemas come from the contract (`schema.message` the
 * client messages, `schema.outbound` the server messages and replies), its handler table is
 * checked against the client message types, and the handlers of request types answer: the
 * return value (or what its promise resolves to) is sent as `{ type: 'reply', id, data }`.
 */
import { isContract, ReservedType, type AnyContract } from '../contract/contract.js'
import { requestIdOf, type RequestId } from '../contract/errors.js'
import { WebSocket } from '../connection/connection.js'
import { WebSocketUsageError } from '../protocol/errors.js'
import type { MessageHandler, MessageSchemas } from './messages.js'

export interface ContractRoute {
  schemas: MessageSchemas
  handlers: Record<string, MessageHandler> | undefined
}

function sendReply (socket: WebSocket, id: RequestId, data: unknown): void {
  if (socket.readyState === WebSocket.OPEN) socket.send({ type: ReservedType.Reply, id, data })
}

/** A request type's handler: what it returns becomes the reply to a message that carries an `id`. */
function answering (handler: MessageHandler): MessageHandler {
  return function answer (message, socket, request) {
    const result = handler(message, socket, request)
    const id = requestIdOf(message)
    if (id === undefined) return result
    if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
      // a rejection reaches the route's handler-error path (log, errorHandler, close 1011)
      return (result as Promise<unknown>).then((data) => sendReply(socket, id, data))
    }
    sendReply(socket, id, result)
    return undefined
  }
}

/**
 * Resolve a route's `contract` option with its schema and handler table. Throws a coded error at
 * the declaration: a value that is not a contract, a route that also sets `schema.message` or
 * `schema.outbound`, a handler for a type the contract's client does not send.
 */
export function resolveContractRoute (contract: unknown, schema: MessageSchemas | undefined, handlers: Record<string, MessageHandler> | undefined): ContractRoute {
  if (!isContract(contract)) {
    throw new WebSocketUsageError('FST_ERR_WS_CONTRACT', 'fastify-rfc6455: the contract route option takes what defineContract() returns')
  }
  if (schema?.message !== undefined || schema?.outbound !== undefined) {
    throw new WebSocketUsageError('FST_ERR_WS_CONTRACT_CONFLICT', 'fastify-rfc6455: a route with a contract takes its schema.message and schema.outbound from it: set one or the other')
  }
  const c = contract as AnyContract
  let table: Record<string, MessageHandler> | undefined
  if (handlers !== undefined) {
    table = {}
    for (const [type, handler] of Object.entries(handlers)) {
      if (!Object.hasOwn(c.client, type)) {
        throw new WebSocketUsageError('FST_ERR_WS_CONTRACT_HANDLER', `fastify-rfc6455: messageHandlers.${type} handles a type the contract's client does not send`)
      }
      table[type] = Object.hasOwn(c.replies, type) ? answering(handler) : handler
    }
  }
  return { schemas: { message: c.inbound, outbound: c.outbound }, handlers: table }
}
