/**
 * The public type surface of the Fastify layer: declaration merging for `FastifyInstance.ws`,
 * `injectWS`, the registry decorators, the route options, and the type-provider plumbing that
 * types `request.params` / `request.query` and the messages in `app.ws()` handlers.
 */
import type { WebSocketMetricsSnapshot } from './metrics.js'
import type {
  ContextConfigDefault,
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  FastifySchema,
  FastifyTypeProvider,
  FastifyTypeProviderDefault,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
  RawServerDefault,
  RouteGenericInterface,
  RouteOptions,
  RouteShorthandOptions
} from 'fastify'
import type { MessageData, Sendable, SendableData, WebSocket, WebSocketEvents } from '../connection/connection.js'
import type { TopicHub } from '../topics/hub.js'
import type { AnyContract, ClientMessage, ContractHandlers, ServerMessage } from '../contract/contract.js'
import type { AsyncApiOptions } from './asyncapi.js'
import type { InjectWSHooks, InjectWSOptions } from './inject.js'
import type { WebSocketRouteOptions } from './options.js'
import type { WebSocketHookMap, WebSocketHookName } from './registry.js'

/** What the type provider makes of an inbound schema (Fastify's formula, not exported by it). */
export type ResolveInbound<TypeProvider extends FastifyTypeProvider, Schema> = (TypeProvider & { schema: Schema })['validator']
/** What the type provider makes of an outbound schema. */
export type ResolveOutbound<TypeProvider extends FastifyTypeProvider, Schema> = (TypeProvider & { schema: Schema })['serializer']

/** Anything `send()` takes besides JSON values. */
export type RawSendData = string | Buffer | ArrayBuffer | ArrayBufferView

/** What `send()` of a plain WebSocket takes as its message. */
type SendData = SendableData
/** The arguments after the message of `send()`'s overloads (the last two when there are more). */
type SendRest = WebSocket['send'] extends { (data: any, ...rest: infer A): boolean, (data: any, ...rest: infer B): boolean } ? [A, B] : never
/** The events of a WebSocket besides 'message', whose listeners keep the WebSocket's types. */
type OtherEvent = Exclude<keyof WebSocketEvents, 'message'>
type Listener<E extends OtherEvent> = (...args: WebSocketEvents[E]) => void
/**
 * A 'message' listener of a MessageSocket. Without a type provider the message is `unknown`, and
 * a listener may declare the type it expects (`(message: { text: string }) => ...`): its
 * parameter is then compared both ways, as a method's is.
 */
type MessageListener<In> = unknown extends In
  ? { listener (message: In, isBinary: boolean): void }['listener']
  : (message: In, isBinary: boolean) => void

/** `on()`, `once()`, `off()`... of a MessageSocket: 'message' with its message type, the other events as a WebSocket's. */
interface ListenerMethod<In, Socket> {
  (event: 'message', listener: MessageListener<In>): Socket
  <E extends OtherEvent> (event: E, listener: Listener<E>): Socket
}

/** A WebSocket whose `send()` takes `Out` (sent as JSON) besides raw text and bytes. */
interface SocketWithSend<Out extends SendData> extends WebSocket {
  send<T extends Out | RawSendData> (data: T & Sendable<T>, ...rest: SendRest[0]): boolean
  send<T extends Out | RawSendData> (data: T & Sendable<T>, ...rest: SendRest[1]): boolean
}

/**
 * The socket of a route without `schema.message`: `for await` yields text as a string and binary
 * as a Buffer; with `schema.outbound`, `send()` takes `Out`.
 */
export interface RouteSocket<Out extends SendData = SendData> extends SocketWithSend<Out> {
  [Symbol.asyncIterator] (): AsyncGenerator<MessageData, void, undefined>
}

/**
 * The socket of a route with `schema.message` (and maybe `schema.outbound`): 'message' listeners
 * and the async iterator receive validated values of type `In`; `send()` takes `Out`. Its events
 * are typed as the WebSocket's: an unknown event name or a listener of the wrong shape does not
 * compile. It is a WebSocket (sets, maps, `broadcast()`, `websocketConnections` take it).
 */
export interface MessageSocket<In = unknown, Out extends SendData = SendData> extends SocketWithSend<Out> {
  on: ListenerMethod<In, this>
  once: ListenerMethod<In, this>
  off: ListenerMethod<In, this>
  addListener: ListenerMethod<In, this>
  removeListener: ListenerMethod<In, this>
  prependListener: ListenerMethod<In, this>
  prependOnceListener: ListenerMethod<In, this>
  [Symbol.asyncIterator] (): AsyncGenerator<In, void, undefined>
}

type HasKey<S, K extends string> = S extends Record<K, unknown> ? (undefined extends S[K] ? false : true) : false
/** What `send()` takes on a route with `schema.outbound`: the type provider's type (what send() takes when there is none). */
type OutboundOf<SchemaCompiler, TypeProvider extends FastifyTypeProvider> =
  SendableOutbound<ResolveOutbound<TypeProvider, (SchemaCompiler & { outbound: unknown })['outbound']>>
type SendableOutbound<T> = unknown extends T ? SendData : Extract<T, SendData>

/** The socket type a route's handler receives, from its schema and the type provider. */
export type SocketFor<SchemaCompiler, TypeProvider extends FastifyTypeProvider> =
  HasKey<SchemaCompiler, 'message'> extends true
    ? MessageSocket<
      ResolveInbound<TypeProvider, (SchemaCompiler & { message: unknown })['message']>,
      HasKey<SchemaCompiler, 'outbound'> extends true ? OutboundOf<SchemaCompiler, TypeProvider> : SendData>
    : RouteSocket<HasKey<SchemaCompiler, 'outbound'> extends true ? OutboundOf<SchemaCompiler, TypeProvider> : SendData>

/** The handler of a WebSocket route: `(socket, request)`, both typed from the route's schema. */
export type WebSocketRouteHandler<
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  ContextConfig = ContextConfigDefault,
  SchemaCompiler extends FastifySchema = FastifySchema,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger
> = (
  this: FastifyInstance<RawServer, RawRequest, RawReplyDefaultExpression<RawServer>, Logger, TypeProvider>,
  socket: SocketFor<SchemaCompiler, TypeProvider>,
  request: FastifyRequest<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger>
) => void | Promise<unknown>

/**
 * The `type`-keyed handler table of a route whose message schema is a union of objects with a
 * string `type`: each handler receives the members of the union with that `type`.
 */
export type MessageHandlers<In, Socket, Request> =
  unknown extends In
    ? Record<string, (message: any, socket: Socket, request: Request) => unknown>
    : [In] extends [{ type: string }]
        ? { [K in In['type']]?: (message: Extract<In, { type: K }>, socket: Socket, request: Request) => unknown }
        : never

/** Options of `app.ws(path, options, handler)`: Fastify's route options plus the WebSocket ones. */
export type WebSocketShorthandOptions<
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  ContextConfig = ContextConfigDefault,
  SchemaCompiler extends FastifySchema = FastifySchema,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger
> = RouteShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger> &
  // `errorHandler` at the top level stays Fastify's (HTTP); the WebSocket one goes under `ws`
  Omit<WebSocketRouteOptions, 'errorHandler'>

/** The socket of a contract route: receives the client's messages, `send()` takes the server's. */
export type ContractSocket<C extends AnyContract> = MessageSocket<ClientMessage<C>, Extract<ServerMessage<C>, SendData>>

/** Options of `app.ws(path, { contract, messageHandlers })`: the schemas come from the contract. */
export type ContractRouteOptions<C extends AnyContract, Request,
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  ContextConfig = ContextConfigDefault,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger
> = Omit<WebSocketShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, FastifySchema, TypeProvider, Logger>, 'messageHandlers' | 'schema'> & {
  /** the route's messages, both directions (see defineContract) */
  contract: C
  /** per-type handlers of the client's messages; a request type's handler returns its reply */
  messageHandlers?: ContractHandlers<C, ContractSocket<C>, Request>
  schema?: Omit<FastifySchema, 'message' | 'outbound'>
}

/** `never` for `any`: options cast to any (whose contract is inferred as AnyContract) take the other overloads of `app.ws()` */
type NotAny<T> = 0 extends 1 & T ? never : unknown

/** `app.ws()`: a GET route upgraded to a WebSocket, following encapsulation like `app.get()`. */
export interface WebSocketRouteShorthand<
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger
> {
  /** a route whose messages a contract declares (defineContract) */
  <const C extends AnyContract, RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault>(
    path: string,
    options: ContractRouteOptions<C, FastifyRequest<RouteGeneric, RawServer, RawRequest, FastifySchema, TypeProvider, ContextConfig, Logger>,
      RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, TypeProvider, Logger> & NotAny<C['client']>,
    handler?: (this: FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>, socket: ContractSocket<C>,
      request: FastifyRequest<RouteGeneric, RawServer, RawRequest, FastifySchema, TypeProvider, ContextConfig, Logger>) => void | Promise<unknown>
  ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
  <RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault,
    const SchemaCompiler extends FastifySchema = FastifySchema>(
    path: string,
    options: WebSocketShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger>,
    handler: WebSocketRouteHandler<RawServer, RawRequest, RouteGeneric, ContextConfig, NoInfer<SchemaCompiler>, TypeProvider, Logger>
  ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
  <RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault,
    const SchemaCompiler extends FastifySchema = FastifySchema>(
    path: string,
    handler: WebSocketRouteHandler<RawServer, RawRequest, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger>
  ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
  /** a route served entirely by its `messageHandlers` table */
  <RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault,
    const SchemaCompiler extends FastifySchema = FastifySchema>(
    path: string,
    options: WebSocketShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger> & {
      messageHandlers: MessageHandlers<ResolveInbound<TypeProvider, (SchemaCompiler & { message: unknown })['message']>, SocketFor<SchemaCompiler, TypeProvider>,
        FastifyRequest<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger>>
    }
  ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
}

/** `app.injectWS(path, options, hooks)`: a client socket, whose `for await` yields text as a string and binary as a Buffer */
export type InjectWS = (path?: string, options?: InjectWSOptions, hooks?: InjectWSHooks) => Promise<RouteSocket>

declare module 'fastify' {
  interface FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider> {
    /** Declare a WebSocket route: GET `path` upgraded to a WebSocket handled by `handler`. */
    ws: WebSocketRouteShorthand<RawServer, RawRequest, RawReply, TypeProvider, Logger>
    /**
     * A client WebSocket connected to `path` without a network, through the real handshake,
     * hooks and frame codec. A refused upgrade rejects with a `WebSocketUpgradeError`
     * (`statusCode`, `headers`, `body`).
     */
    injectWS: InjectWS
    /** `app.route({ method: 'GET', url, websocket: true, handler: (socket, request) => {} })` */
    route<RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault,
      const SchemaCompiler extends FastifySchema = FastifySchema>(
      options: Omit<RouteOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger>, 'websocket' | 'handler'> & {
        websocket: true
        handler: WebSocketRouteHandler<RawServer, RawRequest, RouteGeneric, ContextConfig, NoInfer<SchemaCompiler>, TypeProvider, Logger>
      }
    ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
    /** The AsyncAPI 3.0 document of the app's WebSocket routes (channels, messages both ways, operations). */
    asyncapi(options?: AsyncApiOptions): Record<string, unknown>
    /** Open WebSocket connections of this plugin registration. */
    websocketConnections: ReadonlySet<WebSocket>
    /** Open WebSocket connections per route URL (prefix included, e.g. '/api/chat/:room'). */
    websocketConnectionsByRoute: ReadonlyMap<string, ReadonlySet<WebSocket>>
    /** A snapshot of this registration's WebSocket metrics, per route pattern and in total. */
    websocketMetrics(): WebSocketMetricsSnapshot
    /**
     * Add an `onOpen(socket, request)` or `onClose(socket, request, { code, reason, wasClean,
     * durationMs })` hook to the WebSocket routes of this context and its children.
     */
    addWebSocketHook<Name extends WebSocketHookName>(name: Name, hook: WebSocketHookMap[Name]): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
    /**
     * Publish to the subscribers of `topic`: every local one (their route's `schema.outbound`
     * applies to objects) and, through the plugin's `adapter`, those of other processes. Data as
     * `socket.send()` takes it. Returns how many local subscribers accepted it.
     */
    publish<T>(topic: string, data: T & Sendable<T>, options?: { binary?: boolean }): number
    /** Subscribers of `topic` in this process. */
    subscriberCount(topic: string): number
    /** Subscribers of `topic` across every process the adapter reaches (the local count in-process). */
    presence(topic: string): Promise<number>
    /** The topic hub of this plugin registration: `adapterErrors`, 'adapterError' events, `topics()`. */
    websocketTopics: TopicHub
  }

  interface RouteShorthandMethod<RawServer, RawRequest, RawReply, TypeProvider, Logger> {
    /** `app.get(path, { websocket: true }, (socket, request) => {})`, as with @fastify/websocket */
    <RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault,
      const SchemaCompiler extends FastifySchema = FastifySchema>(
      path: string,
      options: RouteShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger> & { websocket: true },
      handler: WebSocketRouteHandler<RawServer, RawRequest, RouteGeneric, ContextConfig, NoInfer<SchemaCompiler>, TypeProvider, Logger>
    ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
  }

  interface FastifySchema {
    /** schema of inbound WebSocket messages (JSON text), validated with the route's validator compiler */
    message?: unknown
    /** schema of the objects `socket.send()` serializes, with the route's serializer compiler */
    outbound?: unknown
  }

  interface RouteShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger> {
    /** this GET route is a WebSocket route: `handler` receives (socket, request) */
    websocket?: boolean
    /** WebSocket handler of a route whose `handler` serves plain HTTP */
    wsHandler?: WebSocketRouteHandler<RawServer, RawRequest, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger>
    /** per-route WebSocket options */
    ws?: WebSocketRouteOptions
    /** per-`type` handlers of a message union (see `schema.message`) */
    messageHandlers?: MessageHandlers<ResolveInbound<TypeProvider, (SchemaCompiler & { message: unknown })['message']>, SocketFor<SchemaCompiler, TypeProvider>,
      FastifyRequest<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger>>
  }
}
