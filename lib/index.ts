/** fastify-rfc6455: a Fastify plugin that speaks WebSocket (RFC 6455) itself. */
import { fastifyRfc6455 } from './plugin/plugin.js'

export default fastifyRfc6455
export { fastifyRfc6455 }
export { WebSocket, type WebSocketEvents, type WebSocketOptions, type MessageData, type SendCallback, type SendOptions, type Sendable, type SocketPublishOptions } from './connection/connection.js'
export type { WebSocketPluginOptions, WebSocketRouteOptions, PreCloseHook, ProtocolSelector, OriginCheck, LimitOptions, InvalidMessagePolicy, InvalidMessageHandler, WebSocketErrorHandler } from './plugin/options.js'
export type { WebSocketHandler } from './plugin/route.js'
export type { WebSocketRouteShorthand, WebSocketRouteHandler, WebSocketShorthandOptions, MessageSocket, RouteSocket, MessageHandlers, SocketFor, InjectWS } from './plugin/types.js'
export { InvalidMessageError, MessageErrorCode, type MessageIssue, type InvalidMessageReply } from './plugin/messages.js'
export { WebSocketUpgradeError, type InjectWSOptions } from './plugin/inject.js'
export type { WebSocketCloseInfo, OnOpenHook, OnCloseHook, WebSocketHookName } from './plugin/registry.js'
export { CloseCode, Opcode } from './protocol/constants.js'
export { ProtocolError, HandshakeError, WebSocketUsageError, ErrorCode } from './protocol/errors.js'
export { WebSocketProtocol, ReadyState, type ProtocolEvent, type ProtocolOptions } from './protocol/protocol.js'
export { setZlibConcurrency, type PerMessageDeflateOptions } from './connection/deflate.js'
export type { BufferedAmountPolicy } from './connection/limits.js'
export { broadcast, PreparedMessage, type BroadcastOptions } from './connection/broadcast.js'
export { sharedReadBufferSupported } from './connection/shared-reads.js'
export { TopicHub, type PublishOptions, type TopicHubOptions } from './topics/hub.js'
export { memoryAdapter, MemoryTopicAdapter } from './topics/memory-adapter.js'
export type { TopicAdapter, TopicAdapterHost, TopicPublication } from './topics/adapter.js'
