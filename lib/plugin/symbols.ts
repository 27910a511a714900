/** Private state behind symbols, kept in one file. */
export const kUpgrade = Symbol('fastify-rfc6455.upgrade')
export const kState = Symbol('fastify-rfc6455.state')
/** a route's options were turned into a WebSocket route already */
export const kRouteDone = Symbol('fastify-rfc6455.route-done')
/** per-context lists of addWebSocketHook() hooks */
export const kWebSocketHooks = Symbol('fastify-rfc6455.hooks')
