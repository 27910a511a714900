/**
 * One message contract per route, both directions, keyed by `type`: what the client sends
 * (`client`), what the server sends (`server`) and, for client messages that expect one, the
 * payload of their reply (`replies`). Each payload is an object schema, TypeBox or plain JSON
 * Schema, without the `type` key; on the wire a message is its payload plus `type` (and `id` for
 * a request). The same declaration becomes the route's `schema.message` (inbound), its
 * `schema.outbound`, the handler table's types, the client's types and the AsyncAPI document.
 *
 * Pure: imports nothing at run time (TypeBox only for its types), so both the server and a
 * browser bundle import it.
 */
import type { Static, TSchema } from 'typebox'
import { ContractUsageError, type InvalidMessageReply, type RequestId } from './errors.js'

/** A payload schema: an object schema whose properties do not include `type`. */
export type PayloadSchema = TSchema & object
export type SchemaTable = Record<string, PayloadSchema>

/** The message types that carry the contract's own meaning on the wire. */
export const ReservedType = {
  /** the reply to a request: `{ type: 'reply', id, data }` */
  Reply: 'reply',
  /** an invalid-message reply: `{ type: 'error', code, message, errors, id? }` */
  Error: 'error',
  /** a publication on a topic with history: `{ type: 'publication', topic, epoch, offset, data }` (the names of ../topics/history.ts) */
  Publication: 'publication',
  /** the answer to a subscription to a topic with history: `{ type: 'subscribed', topic, epoch, offset, recovered, reason? }` */
  Subscribed: 'subscribed'
} as const

export interface ContractSpec<Client extends SchemaTable, Server extends SchemaTable, Replies extends { [K in keyof Client]?: PayloadSchema }> {
  client: Client
  server?: Server
  replies?: Replies
}

/** A declared contract: the tables as given and the JSON Schemas the route validates with. */
export interface Contract<Client extends SchemaTable = SchemaTable, Server extends SchemaTable = SchemaTable,
  Replies extends { [K in keyof Client]?: PayloadSchema } = {}> {
  readonly client: Client
  readonly server: Server
  readonly replies: Replies
  /** `schema.message`: a union keyed by `type` of every client message */
  readonly inbound: Record<string, unknown>
  /** `schema.outbound`: every server message, the replies and the invalid-message reply */
  readonly outbound: Record<string, unknown>
}
export type AnyContract = Contract<any, any, any>

type Payload<S> = S extends TSchema ? Static<S> : never
type Flat<T> = { [K in keyof T]: T[K] } & {}

/** The message of type `K` of a table, as it is on the wire. */
export type MessageOf<Table, K extends keyof Table & string> = Flat<{ type: K } & Payload<Table[K]>>
/** What a client sends: the union of its message types. */
export type ClientMessage<C extends AnyContract> = { [K in keyof C['client'] & string]: MessageOf<C['client'], K> }[keyof C['client'] & string]
/** What a server sends: the union of its message types (replies and error replies apart). */
export type ServerMessage<C extends AnyContract> = { [K in keyof C['server'] & string]: MessageOf<C['server'], K> }[keyof C['server'] & string]
export type ClientType<C extends AnyContract> = keyof C['client'] & string
export type ServerType<C extends AnyContract> = keyof C['server'] & string
/** The client message types that declare a reply. */
export type RequestType<C extends AnyContract> = { [K in ClientType<C>]: C['replies'][K] extends PayloadSchema ? K : never }[ClientType<C>]
/** The payload of a client message of type `K` (what `send(K, payload)` takes). */
export type ClientPayload<C extends AnyContract, K extends ClientType<C>> = Payload<C['client'][K]>
/** The payload of a server message of type `K` (what `on(K, handler)` receives). */
export type ServerPayload<C extends AnyContract, K extends ServerType<C>> = MessageOf<C['server'], K>
/** The reply payload of a request type. */
export type ReplyOf<C extends AnyContract, K extends ClientType<C>> = Payload<C['replies'][K]>

/** A reply on the wire: the request's `id` and the handler's return value as `data`. */
export interface ReplyMessage<Data = unknown> {
  type: 'reply'
  id: RequestId
  data: Data
}
/** Everything a server may send under a contract. */
export type ServerWireMessage<C extends AnyContract> = ServerMessage<C> | ReplyMessage<ReplyOf<C, RequestType<C>>> | InvalidMessageReply

/**
 * The handler table of a contract route: one optional handler per client message type, each with
 * its message typed; a request type's handler returns (or resolves to) the reply's payload.
 */
export type ContractHandlers<C extends AnyContract, Socket, Request> = {
  [K in ClientType<C>]?: (message: MessageOf<C['client'], K> & (K extends RequestType<C> ? { id?: RequestId } : {}), socket: Socket, request: Request) =>
    K extends RequestType<C> ? ReplyOf<C, K> | Promise<ReplyOf<C, K>> : unknown
}

const idSchema = { anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 64 }] }

function checkTable (table: unknown, side: string, reserved: readonly string[]): Record<string, Record<string, unknown>> {
  if (table === null || typeof table !== 'object' || Array.isArray(table)) {
    throw new ContractUsageError('FST_ERR_WS_CONTRACT', `fastify-rfc6455: the contract's ${side} must be an object of schemas keyed by message type`)
  }
  for (const [type, schema] of Object.entries(table)) {
    if (reserved.includes(type)) {
      throw new ContractUsageError('FST_ERR_WS_CONTRACT', `fastify-rfc6455: the ${side} message type ${JSON.stringify(type)} is reserved by the contract`)
    }
    const s = schema as { type?: unknown, properties?: Record<string, unknown> } | null
    if (s === null || typeof s !== 'object' || s.type !== 'object') {
      throw new ContractUsageError('FST_ERR_WS_CONTRACT', `fastify-rfc6455: the ${side} message ${JSON.stringify(type)} needs an object schema (Type.Object or { type: 'object' })`)
    }
    if (s.properties !== undefined && (Object.hasOwn(s.properties, 'type') || (side === 'client' && Object.hasOwn(s.properties, 'id')))) {
      throw new ContractUsageError('FST_ERR_WS_CONTRACT', `fastify-rfc6455: the ${side} message ${JSON.stringify(type)} declares a key the contract sets itself (type${side === 'client' ? ', id' : ''})`)
    }
  }
  return table as Record<string, Record<string, unknown>>
}

/** `{ type: K, ...payload }` (and an optional `id` for a request) as one object schema. */
function wireSchema (type: string, payload: Record<string, unknown>, request: boolean): Record<string, unknown> {
  const properties = { type: { type: 'string', const: type }, ...(payload.properties as object | undefined), ...(request ? { id: idSchema } : {}) }
  const required = ['type', ...((payload.required as string[] | undefined) ?? [])]
  return { ...payload, properties, required }
}

/**
 * Declare a route's messages. Throws a coded error (FST_ERR_WS_CONTRACT) at the call for a table
 * that is not an object of object schemas, a reserved server type (ReservedType: `reply`, `error`,
 * `publication`, `subscribed`), a payload that declares `type` (or `id`), or a reply for a type
 * the client does not send.
 */
export function defineContract<const Client extends SchemaTable, const Server extends SchemaTable = {},
  const Replies extends { [K in keyof Client]?: PayloadSchema } = {}> (spec: ContractSpec<Client, Server, Replies>): Contract<Client, Server, Replies> {
  if (spec === null || typeof spec !== 'object') throw new ContractUsageError('FST_ERR_WS_CONTRACT', 'fastify-rfc6455: defineContract({ client, server, replies }) needs an object')
  const client = checkTable(spec.client, 'client', [])
  const server = checkTable(spec.server ?? {}, 'server', Object.values(ReservedType))
  const replies = checkTable(spec.replies ?? {}, 'replies', [])
  for (const type of Object.keys(replies)) {
    if (!Object.hasOwn(client, type)) throw new ContractUsageError('FST_ERR_WS_CONTRACT', `fastify-rfc6455: a reply is declared for ${JSON.stringify(type)}, which is not a client message type`)
  }
  const clientTypes = Object.keys(client)
  if (clientTypes.length === 0) throw new ContractUsageError('FST_ERR_WS_CONTRACT', 'fastify-rfc6455: the contract declares no client message type')
  const inbound = { anyOf: clientTypes.map((type) => wireSchema(type, client[type], Object.hasOwn(replies, type))) }
  const outbound = {
    anyOf: [
      ...Object.keys(server).map((type) => wireSchema(type, server[type], false)),
      ...Object.keys(replies).map((type) => ({
        type: 'object',
        properties: { type: { type: 'string', const: ReservedType.Reply }, id: idSchema, data: replies[type] },
        required: ['type', 'id', 'data']
      }))
    ]
  }
  return Object.freeze({ client, server, replies, inbound, outbound }) as unknown as Contract<Client, Server, Replies>
}

/** Whether `value` is a contract made by defineContract (its tables and derived schemas). */
export function isContract (value: unknown): value is AnyContract {
  if (value === null || typeof value !== 'object') return false
  const c = value as Partial<AnyContract>
  return typeof c.client === 'object' && typeof c.server === 'object' && typeof c.replies === 'object' &&
    typeof c.inbound === 'object' && typeof c.outbound === 'object'
}
