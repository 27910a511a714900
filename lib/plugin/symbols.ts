/** Private state behind symbols, kept in one file. */
export const kUpgrade = Symbol('fastify-rfc6455.upgrade')
export const kState = Symbol('fastify-rfc6455.state')
