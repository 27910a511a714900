/**
 * Schema-validated JSON messages: safe JSON decoding, validation with the app's validator
 * compiler (compiled once per route), the invalid-message policies, the `type`-keyed handler
 * table, and outbound serialization with the app's serializer compiler.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import secureJsonParse from 'secure-json-parse'
import { WebSocket } from '../connection/connection.js'
import { CloseCode } from '../protocol/constants.js'
import { MessageErrorCode, requestIdOf, type InvalidMessageReply, type MessageIssue, type RequestId } from '../contract/errors.js'
import type { InvalidMessagePolicy } from './options.js'

// the wire contract (codes, issues, the invalid-message reply) lives in the pure lib/contract/
export { MessageErrorCode, type MessageIssue, type InvalidMessageReply } from '../contract/errors.js'

/** An inbound message refused by `schema.message`; `closeCode` is its consequence under 'close'. */
export class InvalidMessageError extends Error {
  readonly code: MessageErrorCode
  readonly closeCode: number
  readonly errors: MessageIssue[]
  /** the message as received */
  readonly data: Buffer
  readonly binary: boolean
  /** the refused message's own `id` (a request's correlation id), echoed in the reply */
  id: RequestId | undefined
  constructor (code: MessageErrorCode, closeCode: number, message: string, errors: MessageIssue[], data: Buffer, binary: boolean) {
    super(message)
    this.name = 'InvalidMessageError'
    this.code = code
    this.closeCode = closeCode
    this.errors = errors
    this.data = data
    this.binary = binary
    this.id = undefined
  }

  toJSON (): InvalidMessageReply {
    const reply: InvalidMessageReply = { type: 'error', code: this.code, message: this.message, errors: this.errors }
    if (this.id !== undefined) reply.id = this.id
    return reply
  }
}

/** The schemas of a WebSocket route: `schema.message` (inbound) and `schema.outbound`. */
export interface MessageSchemas {
  message?: unknown
  outbound?: unknown
}

export type ValidationResult = { ok: true, value: unknown } | { ok: false, errors: MessageIssue[] }
/** `text`: the message as received, to read it again if validation changed `value` */
export type MessageValidator = (value: unknown, text?: Buffer) => ValidationResult

type AnyValidator = ((value: unknown) => unknown) & { errors?: unknown }

function toIssues (errors: unknown): MessageIssue[] {
  const list = Array.isArray(errors) ? errors : errors === undefined || errors === null ? [] : [errors]
  return list.map((e: { instancePath?: unknown, message?: unknown }) => ({
    instancePath: typeof e?.instancePath === 'string' ? e.instancePath : '',
    message: typeof e?.message === 'string' ? e.message : String(e)
  }))
}

/**
 * Compile `schema` with the route's validator compiler: the route's `validatorCompiler`, the
 * app's (Ajv by default, TypeBox or any custom one), through Fastify's public, per-route cached
 * `request.compileValidationSchema`. Understands the result shapes Fastify does: a boolean with
 * `.errors` (Ajv) or `{ value }` / `{ error }` (TypeBox and other custom compilers).
 *
 * A union keyed by `type` (see discriminatedUnion) answers a failed message with the errors of
 * the branch its `type` selects, or with one error naming the allowed types, in place of the
 * errors of every branch.
 */
export function compileMessageValidator (request: FastifyRequest, schema: unknown): MessageValidator {
  const validate = compileSchema(request, schema)
  const union = discriminatedUnion(request, schema)
  if (union === undefined) return validate
  return function validateUnionMessage (value: unknown, text?: Buffer): ValidationResult {
    const result = validate(value)
    if (result.ok) return result
    // the failed branches may have changed `value` (Ajv's removeAdditional deletes the properties
    // a branch does not declare, also in branches that fail): read the message as received again
    const again = text === undefined ? undefined : parseMessage(text, false)
    const original = again?.ok === true ? again.value : value
    return { ok: false, errors: unionErrors(union, original) ?? result.errors }
  }
}

function compileSchema (request: FastifyRequest, schema: unknown): MessageValidator {
  const validate = request.compileValidationSchema(schema as Record<string, unknown>, 'body') as unknown as AnyValidator
  return function validateMessage (value: unknown): ValidationResult {
    const result = validate(value)
    if (result === true) return { ok: true, value }
    if (result === false) return { ok: false, errors: toIssues(validate.errors) }
    if (result !== null && typeof result === 'object') {
      if (typeof (result as { then?: unknown }).then === 'function') {
        throw new TypeError('fastify-rfc6455: asynchronous message validators are not supported')
      }
      if ('error' in result && (result as { error?: unknown }).error !== undefined) {
        return { ok: false, errors: toIssues((result as { error: unknown }).error) }
      }
      if ('value' in result) return { ok: true, value: (result as { value: unknown }).value }
    }
    return { ok: true, value }
  }
}

/** A union keyed by `type`: each branch's validator (undefined if it does not compile alone) by its `type`. */
interface DiscriminatedUnion {
  branches: Map<string, MessageValidator | undefined>
  /** the allowed types, quoted, for the error message */
  allowed: string
}

/**
 * Recognize a discriminated union: `anyOf` or `oneOf` (what TypeBox's `Type.Union` produces)
 * whose every branch requires a `type` property fixed by a distinct string `const` (TypeBox's
 * `Type.Literal`). Each branch is compiled on its own with the same compiler; a branch that does
 * not compile alone (a `$ref` into the root, say) keeps the whole schema's errors for its type.
 */
function discriminatedUnion (request: FastifyRequest, schema: unknown): DiscriminatedUnion | undefined {
  if (schema === null || typeof schema !== 'object') return undefined
  const { anyOf, oneOf } = schema as { anyOf?: unknown, oneOf?: unknown }
  const list = anyOf ?? oneOf
  if (!Array.isArray(list) || list.length === 0) return undefined
  const tags: string[] = []
  for (const branch of list) {
    const { properties, required } = (branch ?? {}) as { properties?: { type?: { const?: unknown } }, required?: unknown }
    const tag = properties?.type?.const
    // a branch that does not require `type` may accept a message without one: not keyed by it
    if (typeof tag !== 'string' || tags.includes(tag) || !Array.isArray(required) || !required.includes('type')) return undefined
    tags.push(tag)
  }
  const branches = new Map<string, MessageValidator | undefined>()
  list.forEach((branch, i) => {
    let validate: MessageValidator | undefined
    try { validate = compileSchema(request, branch) } catch { validate = undefined }
    branches.set(tags[i], validate)
  })
  return { branches, allowed: tags.map((tag) => JSON.stringify(tag)).join(', ') }
}

/**
 * The errors of a message that failed a discriminated union: those of the branch its `type`
 * selects; one error naming the allowed types when it selects none; undefined (keep the whole
 * schema's errors) when the selected branch cannot tell, because it did not compile alone or
 * accepts the message (the root's own keywords, or oneOf's "exactly one", refused it).
 */
function unionErrors (union: DiscriminatedUnion, value: unknown): MessageIssue[] | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return [{ instancePath: '', message: `must be an object whose type is one of ${union.allowed}` }]
  }
  const tag = (value as { type?: unknown }).type
  if (typeof tag !== 'string' || !union.branches.has(tag)) {
    return [{ instancePath: '/type', message: `must be one of ${union.allowed}` }]
  }
  const validate = union.branches.get(tag)
  if (validate === undefined) return undefined
  let result: ValidationResult
  try { result = validate(value) } catch { return undefined }
  return result.ok ? undefined : result.errors
}

/** Compile the outbound schema with the route's serializer compiler (fast-json-stringify by default). */
export function compileOutboundSerializer (reply: FastifyReply, schema: unknown): (value: unknown) => string {
  return reply.compileSerializationSchema(schema as Record<string, unknown>) as (value: unknown) => string
}

/**
 * Parse JSON text refusing prototype poisoning, as Fastify's body parser does: a `__proto__`
 * key or a `constructor.prototype` key is an error, not a silently dropped key.
 */
export function parseMessage (data: Buffer, binary: boolean): { ok: true, value: unknown } | { ok: false, error: InvalidMessageError } {
  if (binary) {
    // RFC 6455 §7.4.1: 1003 "an endpoint that understands only text data MAY send this if it receives a binary message"
    return { ok: false, error: new InvalidMessageError(MessageErrorCode.Binary, CloseCode.UnsupportedData, 'binary messages are not accepted: send JSON text', [], data, binary) }
  }
  try {
    return { ok: true, value: secureJsonParse.parse(data.toString('utf8'), null, { protoAction: 'error', constructorAction: 'error' }) }
  } catch (err) {
    const reason = (err as Error).message
    if (reason.startsWith('Object contains forbidden')) {
      return { ok: false, error: new InvalidMessageError(MessageErrorCode.ForbiddenKey, CloseCode.PolicyViolation, 'the message contains a forbidden key (__proto__ or constructor.prototype)', [], data, binary) }
    }
    // RFC 6455 §7.4.1: 1007 "data within a message that was not consistent with the type of the message"
    return { ok: false, error: new InvalidMessageError(MessageErrorCode.NotJson, CloseCode.InvalidFramePayloadData, 'the message is not valid JSON', [], data, binary) }
  }
}

function schemaError (errors: MessageIssue[], data: Buffer): InvalidMessageError {
  const summary = errors.length === 0
    ? 'the message does not match the schema'
    : errors.map((e) => `${e.instancePath === '' ? 'message' : e.instancePath} ${e.message}`).join(', ')
  return new InvalidMessageError(MessageErrorCode.Schema, CloseCode.PolicyViolation, summary, errors, data, false)
}

/** A per-type handler of a `type`-keyed message union. */
export type MessageHandler = (message: any, socket: WebSocket, request: FastifyRequest) => unknown

export interface InboundOptions {
  validate: MessageValidator | undefined
  policy: InvalidMessagePolicy
  handlers: Record<string, MessageHandler> | undefined
  /** the upgrade request of a connection */
  request: (socket: WebSocket) => FastifyRequest
  /** handler errors: log, route error handler, close 1011 */
  onHandlerError: (socket: WebSocket, error: unknown) => void
}

/**
 * The `inbound` hook of a JSON route's WebSockets (one function per route, called with `this`
 * set to the connection): decode, validate, apply the invalid-message policy, route
 * `type`-keyed messages to their handler; the rest reach 'message' listeners and the async
 * iterator as the validated value.
 */
export function createInbound (options: InboundOptions): (this: WebSocket, data: Buffer, binary: boolean) => unknown {
  const { validate, policy, handlers, request, onHandlerError } = options
  return function inbound (this: WebSocket, data: Buffer, binary: boolean): unknown {
    const parsed = parseMessage(data, binary)
    if (!parsed.ok) return refuse(this, parsed.error)
    let value = parsed.value
    if (validate !== undefined) {
      const result = validate(value, data)
      if (!result.ok) {
        const error = schemaError(result.errors, data)
        // a request refused by the schema: its reply names the request, so the client can fail it
        error.id = requestIdOf(value)
        return refuse(this, error)
      }
      value = result.value
    }
    if (handlers !== undefined && value !== null && typeof value === 'object') {
      const type = (value as { type?: unknown }).type
      if (typeof type === 'string' && Object.hasOwn(handlers, type)) {
        const socket = this
        try {
          const result = handlers[type].call(undefined, value, socket, request(socket))
          if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
            (result as Promise<unknown>).then(undefined, (err: unknown) => onHandlerError(socket, err))
          }
        } catch (err) {
          onHandlerError(socket, err)
        }
        return WebSocket.DROP
      }
    }
    return value
  }

  function refuse (socket: WebSocket, error: InvalidMessageError): typeof WebSocket.DROP {
    applyPolicy(policy, error, socket, request(socket))
    return WebSocket.DROP
  }
}

function applyPolicy (policy: InvalidMessagePolicy, error: InvalidMessageError, socket: WebSocket, request: FastifyRequest): void {
  request.log.debug({ code: error.code, errors: error.errors }, 'websocket message refused')
  if (typeof policy === 'function') {
    policy(error, socket, request)
  } else if (policy === 'close') {
    if (socket.readyState === WebSocket.OPEN) socket.close(error.closeCode)
  } else {
    socket.send(JSON.stringify(error))
  }
}
