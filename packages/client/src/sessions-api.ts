// The control plane's REST API (SPEC §3, §9) for backends and the console.
import type {
  CreatedSession, ErrorBody, MintedToken, MintTokenRequest, OperatorList, OperatorView, SessionEventList, SessionEventView, SessionPage, SessionStatus, SessionView,
} from '@streaming-service/protocol'

/** `GET /sessions` filters and paging (SPEC §12). */
export interface SessionListQuery {
  status?: SessionStatus
  client_id?: string
  /** 1–200, default 50. */
  limit?: number
  /** `next_cursor` of the previous page. */
  cursor?: string
}

/** An error answer: `status` and the service's `code` (`unauthorized`, `session_not_found`, `session_finished`…). */
export class ApiError extends Error {
  readonly status: number
  readonly code: string

  constructor (status: number, code: string, message: string) {
    super(`${status} ${code}${message === '' ? '' : `: ${message}`}`)
    this.name = 'ApiError'
    this.status = status
    this.code = code
  }
}

export interface SessionsApiOptions {
  /** The control plane, e.g. `https://stream.example.com` (a trailing slash is ignored). */
  base: string
  /**
   * `AUTH_MODE=token`: the API key, sent as `Authorization: Bearer` (a
   * function is asked before every request). An API key is a backend's
   * secret: give browsers operator tokens, never the key.
   */
  apiKey?: string | (() => string | undefined)
}

/** `create`, `get`, `list`, `delete`, `operators`, `events`, `mintToken`, `revokeOperator`; every error answer throws `ApiError`. */
export class SessionsApi {
  readonly base: string
  readonly #apiKey: () => string | undefined

  constructor (options: SessionsApiOptions) {
    this.base = options.base.replace(/\/+$/, '')
    const { apiKey } = options
    this.#apiKey = typeof apiKey === 'function' ? apiKey : () => apiKey
  }

  /** `webhookUrl`: this session's own webhook receiver (SPEC §12). */
  async create (clientId: string, options: { webhookUrl?: string } = {}): Promise<CreatedSession> {
    return await this.#request('POST', '/sessions', { client_id: clientId, ...(options.webhookUrl === undefined ? {} : { webhook_url: options.webhookUrl }) })
  }

  /** One page of sessions, newest first; pass `next_cursor` back as `cursor` for the next. */
  async list (query: SessionListQuery = {}): Promise<SessionPage> {
    const params = new URLSearchParams(Object.entries(query).filter(([, value]) => value !== undefined).map(([key, value]): [string, string] => [key, String(value)]))
    return await this.#request('GET', `/sessions${params.toString() === '' ? '' : `?${params.toString()}`}`)
  }

  /** The session's events in order, with their webhook delivery state. */
  async events (sessionId: string): Promise<SessionEventView[]> {
    return (await this.#request<SessionEventList>('GET', `/sessions/${encodeURIComponent(sessionId)}/events`)).events
  }

  async get (sessionId: string): Promise<SessionView> {
    return await this.#request('GET', `/sessions/${encodeURIComponent(sessionId)}`)
  }

  /** Finishes the session: its sockets close with 4410 and its tokens die with it. */
  async delete (sessionId: string): Promise<void> {
    await this.#request('DELETE', `/sessions/${encodeURIComponent(sessionId)}`)
  }

  async operators (sessionId: string): Promise<OperatorView[]> {
    return (await this.#request<OperatorList>('GET', `/sessions/${encodeURIComponent(sessionId)}/operators`)).operators
  }

  /** An operator token for `userId` (`ttl` such as `10m`; default 1 h, at most 24 h). A finished session: `session_finished` (409). */
  async mintToken (sessionId: string, userId: string, options: { ttl?: string } = {}): Promise<MintedToken> {
    const body: MintTokenRequest = { user_id: userId, ...(options.ttl === undefined ? {} : { ttl: options.ttl }) }
    return await this.#request('POST', `/sessions/${encodeURIComponent(sessionId)}/tokens`, body)
  }

  /** Closes the operator's sockets everywhere (4403) and refuses every token issued to it so far. */
  async revokeOperator (sessionId: string, userId: string): Promise<void> {
    await this.#request('DELETE', `/sessions/${encodeURIComponent(sessionId)}/operators/${encodeURIComponent(userId)}`)
  }

  /** A `Viewer`'s `token` that mints a fresh token for every connection attempt. */
  tokenSource (sessionId: string, userId: string, options: { ttl?: string } = {}): () => Promise<string> {
    return async () => (await this.mintToken(sessionId, userId, options)).token
  }

  async #request<T> (method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    const key = this.#apiKey()
    if (key !== undefined) headers.authorization = `Bearer ${key}`
    const res = await fetch(`${this.base}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    if (!res.ok) {
      const error = (await res.json().catch(() => undefined) as Partial<ErrorBody> | undefined)?.error
      throw new ApiError(res.status, error?.code ?? `http_${res.status}`, error?.message ?? res.statusText)
    }
    return (res.status === 204 ? undefined : await res.json()) as T
  }
}
