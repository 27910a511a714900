/**
 * The contract's client: a WHATWG WebSocket (the browser's, Node 22's global, or a constructor
 * passed in, such as undici's) with typed `send(type, payload)` and `on(type, handler)`,
 * request/reply correlated by `id` with a timeout, reconnection with exponential backoff and
 * jitter, a bounded queue of what is sent while disconnected, and states a UI can show. On a
 * route with topic history it unwraps `publication` envelopes, drops duplicates, and resumes each
 * topic from its last position after a reconnection (./positions.ts).
 * Imports nothing from Node: it runs in browsers as it is.
 */
import { type AnyContract, type ClientPayload, type ClientType, type ReplyOf, type RequestType, ReservedType, type ServerPayload, type ServerType } from '../contract/contract.js'
import { ContractUsageError, requestIdOf, type InvalidMessageReply, type RequestId } from '../contract/errors.js'
import { type Backoff, defaultBackoff, type ReconnectOptions, retryDelay } from './backoff.js'
import { ClientErrorCode, RequestError } from './errors.js'
import { type Recovery, RESUME_PARAMETER, StreamPositions } from './positions.js'

/** The part of the WHATWG WebSocket interface the client uses. */
export interface WebSocketLike {
  readonly readyState: number
  readonly protocol: string
  send (data: string): void
  close (code?: number, reason?: string): void
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

/** What a UI shows: each change is passed to `onState` listeners. */
export type ClientState =
  | { state: 'connecting', attempt: number }
  | { state: 'open', protocol: string }
  | { state: 'reconnecting', attempt: number, delay: number, code: number, reason: string }
  | { state: 'closed', code: number, reason: string }

export interface ClientOptions {
  /** ws: or wss: URL of the route */
  url: string
  /** the WebSocket constructor; default globalThis.WebSocket (browsers, Node 22+) */
  WebSocket?: WebSocketConstructor
  /** subprotocols offered in Sec-WebSocket-Protocol */
  protocols?: string | string[]
  /** query parameters added to the URL at every connection (a function is called each time: fresh tokens) */
  query?: Record<string, string> | (() => Record<string, string>)
  /** reconnection after a lost connection; false: none. Default { initialDelay: 500, maxDelay: 30000, factor: 2, jitter: 0.5 } */
  reconnect?: ReconnectOptions | false
  /** messages kept while disconnected, sent in order once open; default 100 */
  queueLimit?: number
  /** ms a request waits for its reply; default 10000 */
  requestTimeout?: number
  /** check of each message from the server (a compiled schema's check, say); a false result drops it to onInvalid */
  validate?: (message: unknown) => boolean
  /** a message from the server that is not JSON, binary, of an unknown type or refused by `validate`; a malformed `publication` or `subscribed` */
  onInvalid?: (data: unknown, reason: string) => void
  /** on a reconnection, ask the server for the publications missed on each topic with history (query parameter `resume`); default true */
  resume?: boolean
}

type Handler = (message: any) => void
type Message = Record<string, unknown> & { type: string }
interface Pending { resolve: (data: any) => void, reject: (error: RequestError) => void, timer: ReturnType<typeof setTimeout>, sent: boolean }
interface Outgoing { text: string, id?: RequestId }

const OPEN = 1

function isMessage (value: unknown): value is Message {
  return value !== null && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string'
}

/** `code` closes the client for good: RFC 6455 §7.4.1 1008 (policy violation) or an application's 4000-4999. */
function isFinalClose (code: number): boolean {
  return code === 1008 || (code >= 4000 && code <= 4999)
}

function checkNumber (value: unknown, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || Number.isNaN(value) || value < min) {
    throw new ContractUsageError('FST_ERR_WS_CLIENT_OPTION', `fastify-rfc6455/client: ${name} must be a number >= ${min}`)
  }
  return value
}

export class ContractClient<C extends AnyContract> {
  readonly contract: C
  #options: ClientOptions
  #WebSocket: WebSocketConstructor
  #backoff: Backoff | undefined
  #queueLimit: number
  #timeout: number
  #socket: WebSocketLike | undefined
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #attempt = 0
  #nextId = 1
  #queue: Outgoing[] = []
  #pending = new Map<RequestId, Pending>()
  #handlers = new Map<string, Set<Handler>>()
  #stateListeners = new Set<(state: ClientState) => void>()
  #positions = new StreamPositions()
  #state: ClientState = { state: 'connecting', attempt: 0 }

  constructor (contract: C, options: ClientOptions) {
    if (contract === null || typeof contract !== 'object' || typeof contract.client !== 'object') {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_CONTRACT', 'fastify-rfc6455/client: createClient(contract, options) takes what defineContract() returns')
    }
    if (options === null || typeof options !== 'object' || typeof options.url !== 'string') {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_OPTION', 'fastify-rfc6455/client: options.url must be a ws: or wss: URL')
    }
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (typeof Ctor !== 'function') {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_NO_WEBSOCKET', 'fastify-rfc6455/client: no global WebSocket here: pass options.WebSocket (undici\'s on Node 20)')
    }
    this.contract = contract
    this.#options = options
    this.#WebSocket = Ctor
    this.#backoff = options.reconnect === false ? undefined : { ...defaultBackoff, ...options.reconnect }
    if (this.#backoff !== undefined) {
      for (const key of ['initialDelay', 'maxDelay', 'factor', 'jitter', 'maxRetries'] as const) checkNumber(this.#backoff[key], `reconnect.${key}`, 0, 0)
      if (this.#backoff.jitter > 1) throw new ContractUsageError('FST_ERR_WS_CLIENT_OPTION', 'fastify-rfc6455/client: reconnect.jitter must be between 0 and 1')
    }
    this.#queueLimit = checkNumber(options.queueLimit, 'queueLimit', 100, 0)
    this.#timeout = checkNumber(options.requestTimeout, 'requestTimeout', 10000, 1)
    if (options.resume !== undefined && typeof options.resume !== 'boolean') {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_OPTION', 'fastify-rfc6455/client: resume must be a boolean')
    }
    this.#connect()
  }

  /** the current state (see onState) */
  get state (): ClientState { return this.#state }
  /** messages waiting for a connection */
  get queued (): number { return this.#queue.length }

  /** the last position seen per topic with history, `{ [topic]: [epoch, offset] }`: what a reconnection resumes from */
  get positions (): Record<string, [string, number]> { return this.#positions.positions }

  /** Listen to state changes; returns the function that stops listening. */
  onState (listener: (state: ClientState) => void): () => void {
    this.#stateListeners.add(listener)
    return () => { this.#stateListeners.delete(listener) }
  }

  /**
   * Listen to the outcome of each subscription to a topic with history (`recovered`: the number
   * of missed publications replayed, 0 for a fresh one; or false with the reason they are lost),
   * and to losses seen in the stream itself (reason 'gap' or 'epoch'). Returns the function that
   * stops listening.
   */
  onRecovery (listener: (recovery: Recovery) => void): () => void {
    // kept with the handlers under a type no contract may declare
    return this.#listen(ReservedType.Subscribed, listener)
  }

  /**
   * Send a message of a declared client type: now if open, else queued (up to queueLimit) for the
   * next connection. False when the queue is full or the client is closed for good.
   */
  send<K extends ClientType<C>> (type: K, payload: ClientPayload<C, K>): boolean {
    this.#checkType(type)
    return this.#push({ text: JSON.stringify({ type, ...(payload as object) }) })
  }

  /** Send a message of a type that declares a reply and wait for the reply's payload. */
  request<K extends RequestType<C>> (type: K, payload: ClientPayload<C, K>, options: { timeout?: number } = {}): Promise<ReplyOf<C, K>> {
    this.#checkType(type)
    if (!Object.hasOwn(this.contract.replies, type)) {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_NOT_A_REQUEST', `fastify-rfc6455/client: ${JSON.stringify(type)} declares no reply: send() it`)
    }
    const timeout = checkNumber(options.timeout, 'timeout', this.#timeout, 1)
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(id, new RequestError(ClientErrorCode.Timeout, `no reply to ${type} within ${timeout} ms`)), timeout)
      this.#pending.set(id, { resolve, reject, timer, sent: false })
      if (!this.#push({ text: JSON.stringify({ type, ...(payload as object), id }), id })) {
        this.#settle(id, new RequestError(this.#state.state === 'closed' ? ClientErrorCode.Closed : ClientErrorCode.QueueFull, `${type} could not be sent`))
      }
    })
  }

  /** Handle the server's messages of one type ('error': refusals of messages that were not requests). Returns the function that stops it. */
  on<K extends ServerType<C>> (type: K, handler: (message: ServerPayload<C, K>) => void): () => void
  on (type: 'error', handler: (reply: InvalidMessageReply) => void): () => void
  on (type: string, handler: Handler): () => void {
    if (type !== 'error' && !Object.hasOwn(this.contract.server, type)) {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_UNKNOWN_TYPE', `fastify-rfc6455/client: the server sends no ${JSON.stringify(type)} message`)
    }
    return this.#listen(type, handler)
  }

  #listen (type: string, handler: Handler): () => void {
    if (typeof handler !== 'function') throw new ContractUsageError('FST_ERR_WS_CLIENT_HANDLER', 'fastify-rfc6455/client: a handler must be a function')
    let set = this.#handlers.get(type)
    if (set === undefined) this.#handlers.set(type, set = new Set())
    set.add(handler)
    return () => { set.delete(handler) }
  }

  /** Close for good: no reconnection; queued messages are dropped and pending requests fail. */
  close (code = 1000, reason = ''): void {
    // WHATWG WebSocket close(): "If code is present, but is neither an integer equal to 1000 nor an
    // integer in the range 3000 to 4999, inclusive, throw an InvalidAccessError"
    if (code !== 1000 && !(Number.isInteger(code) && code >= 3000 && code <= 4999)) {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_CLOSE_CODE', 'fastify-rfc6455/client: close(code) takes 1000 or 3000-4999')
    }
    if (this.#state.state === 'closed') return
    clearTimeout(this.#retryTimer)
    const socket = this.#socket
    this.#socket = undefined
    if (socket !== undefined) {
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null
      socket.close(code, reason)
    }
    this.#finish(code, reason)
  }

  #checkType (type: string): void {
    if (!Object.hasOwn(this.contract.client, type)) {
      throw new ContractUsageError('FST_ERR_WS_CLIENT_UNKNOWN_TYPE', `fastify-rfc6455/client: the contract declares no client message ${JSON.stringify(type)}`)
    }
  }

  #setState (state: ClientState): void {
    this.#state = state
    for (const listener of this.#stateListeners) listener(state)
  }

  #push (message: Outgoing): boolean {
    if (this.#state.state === 'closed') return false
    const socket = this.#socket
    if (socket !== undefined && socket.readyState === OPEN && this.#queue.length === 0) return this.#write(socket, message)
    if (this.#queue.length >= this.#queueLimit) return false
    this.#queue.push(message)
    return true
  }

  #write (socket: WebSocketLike, message: Outgoing): boolean {
    socket.send(message.text)
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id)
      if (pending !== undefined) pending.sent = true
    }
    return true
  }

  #url (): string {
    const query = typeof this.#options.query === 'function' ? this.#options.query() : this.#options.query
    const resume = this.#options.resume !== false && this.#positions.size > 0
    if (query === undefined && !resume) return this.#options.url
    const url = new URL(this.#options.url)
    for (const [name, value] of Object.entries(query ?? {})) url.searchParams.set(name, value)
    // a `resume` the user put in the URL or the query wins (positions kept across page loads, say)
    if (resume && !url.searchParams.has(RESUME_PARAMETER)) url.searchParams.set(RESUME_PARAMETER, JSON.stringify(this.positions))
    return url.toString()
  }

  #connect (): void {
    this.#setState({ state: 'connecting', attempt: this.#attempt })
    let socket: WebSocketLike
    try {
      socket = new this.#WebSocket(this.#url(), this.#options.protocols)
    } catch (err) {
      // a malformed URL or subprotocol is the caller's mistake: say so, and stop
      this.#finish(1006, (err as Error).message)
      throw err
    }
    this.#socket = socket
    socket.onopen = () => {
      this.#attempt = 0
      this.#setState({ state: 'open', protocol: socket.protocol })
      const queue = this.#queue
      this.#queue = []
      for (const message of queue) {
        if (socket.readyState !== OPEN) { this.#queue.push(message); continue }
        this.#write(socket, message)
      }
    }
    socket.onmessage = (event: { data: unknown }) => this.#receive(event.data)
    socket.onerror = () => {}
    socket.onclose = (event: { code?: number, reason?: string }) => this.#lost(socket, event.code ?? 1006, event.reason ?? '')
  }

  #lost (socket: WebSocketLike, code: number, reason: string): void {
    if (this.#socket !== socket) return
    this.#socket = undefined
    // requests that went out on this connection get no reply on the next one
    for (const [id, pending] of this.#pending) {
      if (pending.sent) this.#settle(id, new RequestError(ClientErrorCode.Disconnected, `the connection closed (${code}) before the reply`))
    }
    const backoff = this.#backoff
    if (backoff === undefined || isFinalClose(code) || this.#attempt >= backoff.maxRetries) {
      this.#finish(code, reason)
      return
    }
    this.#attempt++
    const delay = retryDelay(backoff, this.#attempt, Math.random())
    this.#setState({ state: 'reconnecting', attempt: this.#attempt, delay, code, reason })
    // a query() that throws on a retry has closed the client (#connect reported it as the close reason)
    this.#retryTimer = setTimeout(() => { try { this.#connect() } catch {} }, delay)
  }

  #finish (code: number, reason: string): void {
    this.#queue = []
    for (const id of [...this.#pending.keys()]) this.#settle(id, new RequestError(ClientErrorCode.Closed, `the client closed (${code})`))
    this.#setState({ state: 'closed', code, reason })
  }

  #settle (id: RequestId, error: RequestError | undefined, data?: unknown): void {
    const pending = this.#pending.get(id)
    if (pending === undefined) return
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    if (error === undefined) pending.resolve(data)
    else pending.reject(error)
  }

  #invalid (value: unknown, reason: string): void {
    this.#options.onInvalid?.(value, reason)
  }

  #receive (data: unknown): void {
    if (typeof data !== 'string') return this.#invalid(data, 'binary message')
    let message: unknown
    try { message = JSON.parse(data) } catch { return this.#invalid(data, 'not JSON') }
    if (!isMessage(message)) return this.#invalid(message, 'no type')
    const { type } = message
    const id = requestIdOf(message)
    if (type === ReservedType.Publication) return this.#publication(message)
    if (type === ReservedType.Subscribed) {
      const recovery = this.#positions.subscribed(message)
      return recovery === undefined ? this.#invalid(message, 'bad subscribed') : this.#emit(type, recovery)
    }
    if (type === ReservedType.Error) {
      const reply = message as unknown as InvalidMessageReply
      if (id !== undefined && this.#pending.has(id)) {
        return this.#settle(id, new RequestError(String(reply.code), String(reply.message), Array.isArray(reply.errors) ? reply.errors : []))
      }
      return this.#emit(type, message)
    }
    if (!this.#valid(message)) return
    if (type === ReservedType.Reply) {
      if (id !== undefined) this.#settle(id, undefined, message.data)
      return
    }
    this.#serverMessage(message)
  }

  /** A publication on a topic with history: its `data` is a server message of the contract, delivered once, in offset order. */
  #publication (envelope: Message): void {
    const seen = this.#positions.publication(envelope)
    if (seen === 'bad') return this.#invalid(envelope, 'bad publication')
    if (seen === 'duplicate') return
    if (seen !== 'next') this.#emit(ReservedType.Subscribed, { topic: envelope.topic, recovered: false, reason: seen })
    const message = envelope.data
    if (!isMessage(message)) return this.#invalid(message, 'no type')
    if (this.#valid(message)) this.#serverMessage(message)
  }

  #valid (message: Message): boolean {
    if (this.#options.validate === undefined || this.#options.validate(message)) return true
    this.#invalid(message, 'refused by validate')
    return false
  }

  #serverMessage (message: Message): void {
    if (!Object.hasOwn(this.contract.server, message.type)) return this.#invalid(message, 'unknown type')
    this.#emit(message.type, message)
  }

  #emit (type: string, message: unknown): void {
    const set = this.#handlers.get(type)
    if (set !== undefined) for (const handler of set) handler(message)
  }
}

/** A client of one contract route. */
export function createClient<C extends AnyContract> (contract: C, options: ClientOptions): ContractClient<C> {
  return new ContractClient(contract, options)
}
