/**
 * fastify-rfc6455/redis: topics shared between instances through Redis pub/sub. The only entry
 * that imports ioredis (an optional peer dependency); the main entry never does.
 */
export { redisAdapter, RedisTopicAdapter, type RedisAdapterStats } from './topics/redis-adapter.js'
export { RedisAdapterErrorCode, REDIS_ADAPTER_DEFAULTS, type RedisAdapterOptions, type RedisAdapterError } from './topics/redis-options.js'
export type { TopicAdapter, TopicAdapterHost, TopicPublication } from './topics/adapter.js'
export { RedisTopicHistory, DEFAULT_POSITION_TTL, type RedisHistoryOptions } from './topics/redis-history.js'
