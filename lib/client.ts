/**
 * fastify-rfc6455/client: the typed client of a contract route, for browsers and Node (on the
 * WHATWG WebSocket interface), and the contract itself, so a page imports one module.
 */
export { createClient, ContractClient, type ClientOptions, type ClientState, type WebSocketConstructor, type WebSocketLike } from './client/client.js'
export type { Recovery } from './client/positions.js'
export { ClientErrorCode, RequestError } from './client/errors.js'
export type { ReconnectOptions } from './client/backoff.js'
export * from './contract/index.js'
