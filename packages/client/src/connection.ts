import { backoffDelay, defaultBackoff, type BackoffOptions } from './backoff.js'
import { closeAction, CloseCode, type CloseAction } from './close-codes.js'
import type { ConnectTarget, TargetSource } from './credentials.js'
import { Emitter } from './emitter.js'

/** What a connection can send: accepted by the browser's WebSocket and by `ws` alike. */
export type OutgoingData = string | ArrayBuffer | ArrayBufferView | Blob

/**
 * The part of the WebSocket API the SDK uses. The browser's `WebSocket` and
 * the `ws` package's class both fit; handler parameters are loose because the
 * two type their events differently.
 */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  readonly bufferedAmount: number
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  send (data: OutgoingData): void
  close (code?: number, reason?: string): void
}

/**
 * `new WebSocket(url)`; `new WebSocket(url, { headers })` when a target
 * carries headers, which only WebSocket classes such as the `ws` package's
 * accept (a browser's has no way to send headers).
 */
export type WebSocketConstructor = new (url: string, options?: any) => WebSocketLike

/**
 * `idle` before `start()`; `connecting`; `open`; `reconnecting` while waiting
 * for the next attempt; `stopped` after `stop()` or a close code that forbids
 * retrying (then `start()` begins again).
 */
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'stopped'

export interface ConnectionStats {
  state: ConnectionState
  /** Connections opened; `reconnects` counts those after the first. */
  opens: number
  reconnects: number
  messagesIn: number
  bytesIn: number
  messagesOut: number
  bytesOut: number
  /** Of the last close, ours or the server's; 1006 for a network error. */
  lastCloseCode: number | null
  lastCloseReason: string
  /** When the current connection opened (ms since the epoch); null when not open. */
  openedAt: number | null
}

export interface CloseInfo {
  code: number
  reason: string
  action: CloseAction
  /** Delay before the next attempt; null when the client stops. */
  retryInMs: number | null
}

export interface ConnectionEvents {
  state: ConnectionState
  /** A connection opened. Each connection carries a stream from its start. */
  open: { serial: number }
  message: { data: ArrayBuffer | string, serial: number }
  close: CloseInfo
}

export interface ConnectionOptions {
  /**
   * The WebSocket URL; a function is called before every attempt and may be
   * async (e.g. it fetches a fresh token) or add upgrade headers. Its failure
   * counts as a failed attempt (backoff).
   */
  url: TargetSource
  /** Defaults to `globalThis.WebSocket`; in Node pass the `ws` package's class. */
  WebSocket?: WebSocketConstructor
  backoff?: Partial<BackoffOptions>
  /** A connection that stayed open this long (ms) resets the backoff. */
  stableAfterMs?: number
  /** An attempt not open after this long (ms) counts as a network error. */
  connectTimeoutMs?: number
  /** Source of jitter (tests make it deterministic). */
  random?: () => number
}

const OPEN = 1

function byteLength (data: OutgoingData): number {
  if (typeof data === 'string') return new TextEncoder().encode(data).byteLength
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength
  return data.size
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function detach (socket: WebSocketLike): void {
  socket.onopen = null
  socket.onmessage = null
  socket.onclose = null
  // `ws` throws an unhandled 'error' when a connecting socket is closed and nobody listens.
  socket.onerror = () => {}
}

/**
 * One logical connection that reconnects by itself as the close code says
 * (see `closeAction`): never after a refusal that cannot change (bad request,
 * unauthorized, forbidden, not found, conflict, finished), at once after
 * streamRestarted, with exponential backoff and jitter otherwise (going away,
 * abnormal, internal error, try again later, too slow, network errors).
 */
export class ReconnectingSocket {
  readonly #target: () => ConnectTarget | Promise<ConnectTarget>
  readonly #WebSocket: WebSocketConstructor | undefined
  readonly #backoff: BackoffOptions
  readonly #stableAfterMs: number
  readonly #connectTimeoutMs: number
  readonly #random: () => number
  readonly #events = new Emitter<ConnectionEvents>()
  readonly #stats: ConnectionStats = {
    state: 'idle', opens: 0, reconnects: 0, messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0, lastCloseCode: null, lastCloseReason: '', openedAt: null,
  }

  #socket: WebSocketLike | undefined
  #serial = 0
  /** Reconnect attempts since the last stable connection: the backoff's exponent. */
  #attempt = 0
  /** Connection attempts ever started: tells a late-resolving target that its attempt is over. */
  #attempts = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #connectTimer: ReturnType<typeof setTimeout> | undefined

  constructor (options: ConnectionOptions) {
    const { url } = options
    this.#target = typeof url === 'string' ? () => url : url
    this.#WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    this.#backoff = { ...defaultBackoff, ...options.backoff }
    this.#stableAfterMs = options.stableAfterMs ?? 5000
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000
    this.#random = options.random ?? Math.random
  }

  get stats (): ConnectionStats { return { ...this.#stats } }
  get state (): ConnectionState { return this.#stats.state }
  /** Serial number of the latest connection that opened (0 before the first). */
  get serial (): number { return this.#serial }
  /** Bytes queued in the open socket, not yet sent. */
  get bufferedAmount (): number { return this.#socket?.bufferedAmount ?? 0 }

  on<K extends keyof ConnectionEvents> (event: K, listener: (payload: ConnectionEvents[K]) => void): () => void {
    return this.#events.on(event, listener)
  }

  /** Connects, unless already connecting or connected. */
  start (): void {
    if (this.#stats.state !== 'idle' && this.#stats.state !== 'stopped') return
    if (this.#WebSocket === undefined) throw new Error('no WebSocket implementation: pass options.WebSocket (in Node, the ws package)')
    this.#attempt = 0
    this.#connect()
  }

  /** Sends on the open connection; false (nothing sent) when there is none. */
  send (data: OutgoingData): boolean {
    const socket = this.#socket
    if (socket === undefined || socket.readyState !== OPEN) return false
    socket.send(data)
    this.#stats.messagesOut++
    this.#stats.bytesOut += byteLength(data)
    return true
  }

  /** Drops the current connection and opens a new one: at once, or after the backoff delay. */
  reconnect (options: { backoff?: boolean } = {}): void {
    if (this.#stats.state === 'idle' || this.#stats.state === 'stopped') return
    this.#drop(CloseCode.normal, 'reconnect')
    this.#closed(CloseCode.normal, 'reconnect', options.backoff === true ? 'backoff' : 'reconnect-now')
  }

  /** Closes for good (until `start()`). */
  stop (code: number = CloseCode.normal, reason = 'stopped'): void {
    if (this.#stats.state === 'idle' || this.#stats.state === 'stopped') return
    this.#drop(code, reason)
    this.#closed(code, reason, 'stop')
  }

  #setState (state: ConnectionState): void {
    if (this.#stats.state === state) return
    this.#stats.state = state
    this.#events.emit('state', state)
  }

  #connect (): void {
    this.#retryTimer = undefined
    this.#setState('connecting')
    const attempt = ++this.#attempts
    // Covers resolving the target (a token fetched) as well as the handshake.
    this.#connectTimer = setTimeout(() => {
      this.#drop(CloseCode.normal, 'connect timeout')
      this.#closed(CloseCode.abnormal, 'connect timeout')
    }, this.#connectTimeoutMs)
    let target: ConnectTarget | Promise<ConnectTarget>
    try {
      target = this.#target()
    } catch (err) {
      this.#closed(CloseCode.abnormal, `connection target: ${message(err)}`)
      return
    }
    if (!(target instanceof Promise)) {
      this.#open(target)
      return
    }
    // Whatever happened meanwhile (stop, reconnect, timeout) started another attempt or ended this one.
    const current = () => attempt === this.#attempts && this.#stats.state === 'connecting' && this.#socket === undefined
    target.then(
      (resolved) => { if (current()) this.#open(resolved) },
      (err: unknown) => { if (current()) this.#closed(CloseCode.abnormal, `connection target: ${message(err)}`) }
    )
  }

  #open (target: ConnectTarget): void {
    let socket: WebSocketLike
    try {
      socket = typeof target === 'string' ? new this.#WebSocket!(target) : new this.#WebSocket!(target.url, { headers: target.headers })
    } catch (err) {
      this.#closed(CloseCode.abnormal, message(err))
      return
    }
    socket.binaryType = 'arraybuffer'
    this.#socket = socket
    socket.onopen = () => {
      clearTimeout(this.#connectTimer)
      const serial = ++this.#serial
      this.#stats.opens++
      if (this.#stats.opens > 1) this.#stats.reconnects++
      this.#stats.openedAt = Date.now()
      this.#setState('open')
      this.#events.emit('open', { serial })
    }
    socket.onmessage = (event: { data: unknown }) => {
      const data = event.data
      let payload: ArrayBuffer | string
      if (typeof data === 'string' || data instanceof ArrayBuffer) payload = data
      else if (ArrayBuffer.isView(data)) payload = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer
      else return
      this.#stats.messagesIn++
      this.#stats.bytesIn += typeof payload === 'string' ? payload.length : payload.byteLength
      this.#events.emit('message', { data: payload, serial: this.#serial })
    }
    // A close event always follows an error.
    socket.onerror = () => {}
    socket.onclose = (event: { code: number, reason: string }) => {
      detach(socket)
      this.#socket = undefined
      this.#closed(event.code, event.reason)
    }
  }

  /** Closes the current socket without waiting for its close event. */
  #drop (code: number, reason: string): void {
    const socket = this.#socket
    this.#socket = undefined
    if (socket === undefined) return
    detach(socket)
    try { socket.close(code, reason) } catch {}
  }

  #closed (code: number, reason: string, action: CloseAction = closeAction(code)): void {
    clearTimeout(this.#connectTimer)
    clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    const { openedAt } = this.#stats
    if (openedAt !== null && Date.now() - openedAt >= this.#stableAfterMs) this.#attempt = 0
    this.#stats.openedAt = null
    this.#stats.lastCloseCode = code
    this.#stats.lastCloseReason = reason
    let retryInMs: number | null = null
    if (action === 'reconnect-now') retryInMs = 0
    else if (action === 'backoff') retryInMs = backoffDelay(this.#attempt++, this.#backoff, this.#random)
    if (retryInMs === null) {
      this.#setState('stopped')
    } else {
      this.#setState('reconnecting')
      this.#retryTimer = setTimeout(() => this.#connect(), retryInMs)
    }
    this.#events.emit('close', { code, reason, action, retryInMs })
  }
}
