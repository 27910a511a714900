/**
 * Topics in the Fastify layer: one hub per plugin registration (its `adapter` option), and
 * the decorators `app.publish()`, `app.subscriberCount()`, `app.presence()` and
 * `app.websocketTopics` (the hub: its `adapterErrors` count and 'adapterError' events).
 * The decorators find the hub of the registration serving the context they are called on.
 */
import type { FastifyInstance } from 'fastify'
import { WebSocketUsageError, argumentError } from '../protocol/errors.js'
import { checkTopic, type TopicHub } from '../topics/hub.js'
import { getState } from './route.js'

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

/** The decorators of topics, and the adapter closed with the app (after the sockets). */
export function decorateTopics (fastify: FastifyInstance, hub: TopicHub): void {
  fastify.decorate('websocketTopics', hub)
  fastify.decorate('publish', publish)
  fastify.decorate('subscriberCount', subscriberCount)
  fastify.decorate('presence', presence)
  // onClose runs after preClose closed the sockets (their subscriptions ended with them)
  fastify.addHook('onClose', (_instance, closed) => {
    hub.close().then(() => closed(), (err: unknown) => {
      fastify.log.warn({ err }, 'websocket topic adapter failed to close')
      closed()
    })
  })
}

/** Start the adapter (it may connect first): `done` once it is ready, or with its error (register() rejects). */
export function startTopicAdapter (hub: TopicHub, done: (err?: Error) => void): void {
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
