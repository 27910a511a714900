/**
 * Topics in the Fastify layer: the plugin option `adapter`, one hub per plugin registration, and
 * the decorators `app.publish()`, `app.subscriberCount()`, `app.presence()` and
 * `app.websocketTopics` (the hub: its `adapterErrors` count and 'adapterError' events).
 * The decorators find the hub of the registration serving the context they are called on.
 */
import type { FastifyInstance } from 'fastify'
import { WebSocketUsageError, argumentError } from '../protocol/errors.js'
import type { TopicAdapter } from '../topics/adapter.js'
import { checkTopic, TopicHub } from '../topics/hub.js'
import { getState } from './route.js'

const ADAPTER_METHODS = ['init', 'subscribe', 'unsubscribe', 'publish', 'subscriberCount', 'close'] as const

/** The registration's hub, on the plugin option `adapter` (default: the in-process adapter). */
export function createTopicHub (adapter: unknown, log: FastifyInstance['log']): TopicHub {
  if (adapter !== undefined && (adapter === null || typeof adapter !== 'object' ||
      ADAPTER_METHODS.some((name) => typeof (adapter as Record<string, unknown>)[name] !== 'function'))) {
    throw argumentError('type', 'FST_ERR_WS_INVALID_ADAPTER', `fastify-rfc6455: option adapter must be a topic adapter (an object with ${ADAPTER_METHODS.join(', ')})`)
  }
  return new TopicHub({ adapter: adapter as TopicAdapter | undefined, log })
}

function hubOf (instance: FastifyInstance): TopicHub {
  const state = getState(instance)
  if (state === undefined) throw new WebSocketUsageError('FST_ERR_WS_NOT_REGISTERED', 'fastify-rfc6455 is not registered in this context')
  return state.topics
}

/** `app.publish(topic, data, [options])`: to every local subscriber, and through the adapter to the other processes. */
function publish (this: FastifyInstance, topic: string, data: unknown, options?: { binary?: boolean }): number {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw argumentError('type', 'FST_ERR_WS_INVALID_PUBLISH_OPTIONS', 'publish() options must be an object { binary }')
  }
  return hubOf(this).publish(topic, data, { binary: options?.binary })
}

/** `app.subscriberCount(topic)`: subscribers in this process. */
function subscriberCount (this: FastifyInstance, topic: string): number {
  checkTopic(topic)
  return hubOf(this).subscriberCount(topic)
}

/** `app.presence(topic)`: subscribers across every process the adapter reaches. */
function presence (this: FastifyInstance, topic: string): Promise<number> {
  return hubOf(this).presence(topic)
}

/**
 * Decorate, start the adapter (it may connect first) and close it with the app; `done` once the
 * adapter is ready, or with its error (register() rejects).
 */
export function startTopics (fastify: FastifyInstance, hub: TopicHub, done: (err?: Error) => void): void {
  fastify.decorate('websocketTopics', hub)
  fastify.decorate('publish', publish)
  fastify.decorate('subscriberCount', subscriberCount)
  fastify.decorate('presence', presence)
  // after preClose closed the sockets (their subscriptions ended with them)
  fastify.addHook('onClose', (_instance, closed) => {
    hub.close().then(() => closed(), (err: unknown) => {
      fastify.log.warn({ err }, 'websocket topic adapter failed to close')
      closed()
    })
  })
  let started: void | Promise<void>
  try {
    started = hub.init()
  } catch (err) {
    done(err as Error)
    return
  }
  if (started !== undefined && typeof (started as Promise<void>).then === 'function') {
    (started as Promise<void>).then(() => done(), (err: unknown) => done(err as Error))
  } else {
    done()
  }
}
