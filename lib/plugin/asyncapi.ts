/**
 * The AsyncAPI 3.0 document of an app's WebSocket routes, from what the routes declare: one
 * channel per route (its path, with `:param` as `{param}`), one message per contract type in each
 * direction (its wire schema), an operation per message ('receive' what the client sends, 'send'
 * what the server sends, with a `reply` for request types), the subprotocols the route accepts in
 * its WebSocket binding, and the close codes a route may use as the extension `x-close-codes`.
 * `app.asyncapi()` builds it; the plugin's `asyncapi` option serves it (or a route of your own).
 */
import type { FastifyInstance } from 'fastify'
import type { AnyContract } from '../contract/contract.js'
import { ReservedType } from '../contract/contract.js'
import { CloseCode } from '../protocol/constants.js'
import type { MessageSchemas } from './messages.js'

const kRouteDoc = Symbol('fastify-rfc6455.asyncapiRoute')

interface RouteDoc {
  url: string
  schemas: MessageSchemas
  contract: AnyContract | undefined
  protocols: unknown
}

/** The WebSocket routes of each server (every context of an app shares its server). */
const routesByServer = new WeakMap<object, RouteDoc[]>()

type Declaration = { url?: string, method?: unknown, contract?: unknown, ws?: { protocols?: unknown }, protocols?: unknown, [kRouteDoc]?: RouteDoc }

/** Note a WebSocket route when it is declared. */
export function recordRoute (instance: FastifyInstance, route: object, schemas: MessageSchemas | undefined): void {
  const declaration = route as Declaration
  // Fastify's automatic HEAD route of a GET route: the same channel
  if (declaration.method === 'HEAD') return
  const doc: RouteDoc = {
    url: declaration.url ?? '/',
    schemas: { message: schemas?.message, outbound: schemas?.outbound },
    contract: declaration.contract as AnyContract | undefined,
    protocols: declaration.ws?.protocols ?? declaration.protocols
  }
  declaration[kRouteDoc] = doc
  let list = routesByServer.get(instance.server)
  if (list === undefined) routesByServer.set(instance.server, list = [])
  list.push(doc)
}

/** Fastify declares the route again with its prefix: the document shows the URL the client uses. */
export function updateRouteUrl (route: object): void {
  const declaration = route as Declaration
  const doc = declaration[kRouteDoc]
  if (doc !== undefined && typeof declaration.url === 'string' && declaration.method !== 'HEAD') doc.url = declaration.url
}

export interface AsyncApiOptions {
  /** `info` of the document; default title 'WebSocket API', version '1.0.0' */
  info?: { title?: string, version?: string, description?: string }
  /** `servers` of the document; default the address the app listens on (or localhost) */
  servers?: Record<string, { host: string, protocol: 'ws' | 'wss', pathname?: string, description?: string }>
}

/** The plugin's `asyncapi` option: where to serve the document, and its info and servers. */
export interface ServeAsyncApiOptions extends AsyncApiOptions {
  /** default '/asyncapi.json' */
  path?: string
}

/** Serve the document at GET `path` (hidden from OpenAPI documents, as WebSocket routes are). */
export function serveAsyncApi (fastify: FastifyInstance, options: ServeAsyncApiOptions): void {
  const { path = '/asyncapi.json', ...document } = options
  fastify.get(path, { schema: { hide: true } }, async function asyncapiDocument () {
    return fastify.asyncapi(document)
  })
}

/** What a route may close with (RFC 6455 §7.4.1 names), besides the handler's own codes. */
const closeCodes: Record<number, string> = {
  [CloseCode.NormalClosure]: 'normal closure',
  [CloseCode.GoingAway]: 'server shutting down, or a liveness deadline',
  [CloseCode.ProtocolError]: 'protocol error',
  [CloseCode.UnsupportedData]: 'binary message on a JSON route (invalidMessage: close)',
  [CloseCode.InvalidFramePayloadData]: 'invalid UTF-8, or not JSON (invalidMessage: close)',
  [CloseCode.PolicyViolation]: 'schema violation (invalidMessage: close), buffered amount, incomplete message timeout',
  [CloseCode.MessageTooBig]: 'message over maxPayload',
  [CloseCode.InternalError]: 'a handler threw'
}

const errorReply = {
  name: ReservedType.Error,
  title: 'invalid message',
  summary: 'an inbound message the route refused (invalidMessage: reply); id is the refused request\'s id',
  payload: {
    type: 'object',
    properties: {
      type: { type: 'string', const: ReservedType.Error },
      code: { type: 'string' },
      message: { type: 'string' },
      errors: { type: 'array', items: { type: 'object', properties: { instancePath: { type: 'string' }, message: { type: 'string' } } } },
      id: { anyOf: [{ type: 'integer' }, { type: 'string' }] }
    },
    required: ['type', 'code', 'message', 'errors']
  }
}

function wire (type: string, payload: unknown): unknown {
  const p = payload as { properties?: object, required?: string[] }
  return { ...p, properties: { type: { type: 'string', const: type }, ...p.properties }, required: ['type', ...(p.required ?? [])] }
}

function channelId (url: string, taken: Set<string>): string {
  const base = url.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'root'
  let id = base
  for (let i = 2; taken.has(id); i++) id = `${base}_${i}`
  taken.add(id)
  return id
}

/** The `app.asyncapi(options)` decorator: the document of every WebSocket route of the app. */
export function asyncapi (this: FastifyInstance, options: AsyncApiOptions = {}): Record<string, unknown> {
  const channels: Record<string, unknown> = {}
  const operations: Record<string, unknown> = {}
  const taken = new Set<string>()
  for (const route of routesByServer.get(this.server) ?? []) {
    const id = channelId(route.url, taken)
    const ref = (key: string): { $ref: string } => ({ $ref: `#/channels/${id}/messages/${key}` })
    const messages: Record<string, unknown> = {}
    const operation = (name: string, action: 'send' | 'receive', key: string, reply?: string): void => {
      operations[`${id}_${name}`] = {
        action,
        channel: { $ref: `#/channels/${id}` },
        messages: [ref(key)],
        ...(reply === undefined ? {} : { reply: { channel: { $ref: `#/channels/${id}` }, messages: [ref(reply)] } })
      }
    }
    if (route.contract !== undefined) {
      const { client, server, replies } = route.contract
      for (const type of Object.keys(client)) {
        const request = Object.hasOwn(replies, type)
        messages[`client_${type}`] = { name: type, title: `client ${type}`, payload: (route.contract.inbound as { anyOf: unknown[] }).anyOf[Object.keys(client).indexOf(type)] }
        if (request) {
          messages[`reply_${type}`] = {
            name: ReservedType.Reply,
            title: `reply to ${type}`,
            payload: { type: 'object', properties: { type: { type: 'string', const: ReservedType.Reply }, id: { anyOf: [{ type: 'integer' }, { type: 'string' }] }, data: replies[type] }, required: ['type', 'id', 'data'] }
          }
        }
        operation(`receive_${type}`, 'receive', `client_${type}`, request ? `reply_${type}` : undefined)
      }
      for (const type of Object.keys(server)) {
        messages[`server_${type}`] = { name: type, title: `server ${type}`, payload: wire(type, server[type]) }
        operation(`send_${type}`, 'send', `server_${type}`)
      }
    } else {
      messages.inbound = { name: 'inbound', title: 'client message', payload: route.schemas.message ?? {} }
      messages.outbound = { name: 'outbound', title: 'server message', payload: route.schemas.outbound ?? {} }
      operation('receive', 'receive', 'inbound')
      operation('send', 'send', 'outbound')
    }
    if (route.contract !== undefined || route.schemas.message !== undefined) {
      messages.error = errorReply
      operation('send_error', 'send', 'error')
    }
    const params = [...route.url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1])
    const protocols = Array.isArray(route.protocols) ? route.protocols.filter((p): p is string => typeof p === 'string') : []
    channels[id] = {
      address: route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}'),
      title: `WebSocket ${route.url}`,
      messages,
      ...(params.length === 0 ? {} : { parameters: Object.fromEntries(params.map((p) => [p, { description: `path parameter ${p}` }])) }),
      bindings: {
        ws: {
          bindingVersion: '0.1.0',
          method: 'GET',
          ...(protocols.length === 0 ? {} : { headers: { type: 'object', properties: { 'Sec-WebSocket-Protocol': { type: 'string', enum: protocols } } } })
        }
      },
      'x-close-codes': closeCodes
    }
  }
  return {
    asyncapi: '3.0.0',
    info: { title: 'WebSocket API', version: '1.0.0', ...options.info },
    servers: options.servers ?? { default: { host: hostOf(this), protocol: 'ws' } },
    channels,
    operations
  }
}

function hostOf (app: FastifyInstance): string {
  const address = app.server.address()
  if (address === null || typeof address === 'string') return 'localhost'
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `${host}:${address.port}`
}
