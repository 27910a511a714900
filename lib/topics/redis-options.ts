/**
 * The Redis adapter's options, their defaults and checks, and its error codes. A bad option
 * throws a coded error synchronously at `redisAdapter()`, before any connection is made.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { argumentError } from '../protocol/errors.js'

export interface RedisAdapterOptions {
  /** a Redis URL (`redis://` or `rediss://`); default: ioredis's default, 127.0.0.1:6379 */
  url?: string
  /**
   * an ioredis `Redis` or `Cluster` instance, used as a template: the adapter opens its own two
   * connections from it with `duplicate()` and leaves the instance itself alone; or ioredis
   * options for one server
   */
  client?: Redis | Cluster | RedisOptions
  /** first segment of every channel name; default 'fastify-rfc6455' */
  prefix?: string
  /** Redis 7 sharded pub/sub (SSUBSCRIBE / SPUBLISH), for Redis Cluster; default false */
  sharded?: boolean
  /** how long `subscriberCount()` waits for the other instances' answers, in ms; default 1000 */
  presenceTimeout?: number
  /**
   * bytes of publications sent to Redis and not yet answered; past it, publications are not
   * forwarded (counted and reported) until Redis catches up; default 16 MiB
   */
  maxPendingBytes?: number
}

export const REDIS_ADAPTER_DEFAULTS = {
  prefix: 'fastify-rfc6455',
  sharded: false,
  presenceTimeout: 1000,
  maxPendingBytes: 16 * 1024 * 1024
} as const

export const RedisAdapterErrorCode = {
  /** a bad option to `redisAdapter()` (thrown) */
  Option: 'FST_ERR_WS_REDIS_OPTION',
  /** one adapter given to two Fastify instances (thrown by the second `init()`) */
  InUse: 'FST_ERR_WS_REDIS_ADAPTER_IN_USE',
  /** Redis unreachable or refusing: publications not forwarded (reported), presence not asked (rejected) */
  Unavailable: 'WS_ERR_ADAPTER_UNAVAILABLE',
  /** Redis connected but not answering fast enough: maxPendingBytes reached (reported) */
  Overloaded: 'WS_ERR_ADAPTER_OVERLOADED',
  /** a message on an adapter channel that is not an envelope of this version (reported, ignored) */
  Message: 'WS_ERR_ADAPTER_MESSAGE',
  /** not every instance answered a presence request in time (rejected) */
  PresenceTimeout: 'WS_ERR_ADAPTER_PRESENCE_TIMEOUT'
} as const

export type RedisAdapterError = Error & { code: string, unforwarded?: number, recovered?: boolean }

export function adapterError (code: string, message: string, extra: { unforwarded?: number, recovered?: boolean } = {}): RedisAdapterError {
  return Object.assign(new Error(message), { code }, extra)
}

const KNOWN = new Set(['url', 'client', 'prefix', 'sharded', 'presenceTimeout', 'maxPendingBytes'])

export type CheckedRedisAdapterOptions = RedisAdapterOptions & { prefix: string, sharded: boolean, presenceTimeout: number, maxPendingBytes: number }

export function checkRedisAdapterOptions (options: RedisAdapterOptions): CheckedRedisAdapterOptions {
  if (options === null || typeof options !== 'object') throw argumentError('type', RedisAdapterErrorCode.Option, 'redisAdapter() takes an options object')
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw argumentError('type', RedisAdapterErrorCode.Option, `unknown redisAdapter() option "${key}"`)
  }
  const { url, client, prefix, sharded, presenceTimeout, maxPendingBytes } = { ...REDIS_ADAPTER_DEFAULTS, ...options }
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    throw argumentError('type', RedisAdapterErrorCode.Option, 'redisAdapter() option "url" must be a redis:// or rediss:// URL')
  }
  if (client !== undefined && (client === null || typeof client !== 'object')) {
    throw argumentError('type', RedisAdapterErrorCode.Option, 'redisAdapter() option "client" must be an ioredis Redis or Cluster instance, or ioredis options')
  }
  if (url !== undefined && client !== undefined && typeof (client as { duplicate?: unknown }).duplicate === 'function') {
    throw argumentError('type', RedisAdapterErrorCode.Option, 'redisAdapter() takes "url" or an ioredis instance as "client", not both')
  }
  if (typeof prefix !== 'string' || prefix.length === 0) throw argumentError('type', RedisAdapterErrorCode.Option, 'redisAdapter() option "prefix" must be a non-empty string')
  if (typeof sharded !== 'boolean') throw argumentError('type', RedisAdapterErrorCode.Option, 'redisAdapter() option "sharded" must be a boolean')
  if (!Number.isInteger(presenceTimeout) || presenceTimeout <= 0) {
    throw argumentError('range', RedisAdapterErrorCode.Option, 'redisAdapter() option "presenceTimeout" must be a positive integer (ms)')
  }
  if (!Number.isInteger(maxPendingBytes) || maxPendingBytes <= 0) {
    throw argumentError('range', RedisAdapterErrorCode.Option, 'redisAdapter() option "maxPendingBytes" must be a positive integer (bytes)')
  }
  return { url, client, prefix, sharded, presenceTimeout, maxPendingBytes }
}
