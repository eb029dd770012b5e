// The control plane's REST API (SPEC §3, §9), as the console uses it: the SDK's
// SessionsApi, with the API key asked for when the service answers 401.
import { ApiError, SessionsApi, type CreatedSession, type MintedToken, type OperatorView, type SessionPage, type SessionView } from '@streaming-service/client'
import type { ApiKeyPrompt } from './api-key-prompt.js'

export class SessionApi {
  readonly base: string
  readonly #rest: SessionsApi
  readonly #keys: ApiKeyPrompt

  constructor (base: string, keys: ApiKeyPrompt) {
    this.#rest = new SessionsApi({ base, apiKey: () => keys.key })
    this.base = this.#rest.base
    this.#keys = keys
  }

  /** Whether the user gave a key (only ever asked for in token mode). */
  get hasKey (): boolean { return this.#keys.key !== undefined }

  async create (clientId: string): Promise<CreatedSession> {
    return await this.#authorized(async (rest) => await rest.create(clientId))
  }

  async status (sessionId: string): Promise<SessionView> {
    return await this.#authorized(async (rest) => await rest.get(sessionId))
  }

  async operators (sessionId: string): Promise<OperatorView[]> {
    return await this.#authorized(async (rest) => await rest.operators(sessionId))
  }

  /**
   * Live sessions, newest first (one page). `ask`: on a 401, ask for the API
   * key (a click); background refreshes do not, they throw the 401.
   */
  async live (ask: boolean): Promise<SessionPage> {
    const query = { status: 'active', limit: 50 } as const
    return ask ? await this.#authorized(async (rest) => await rest.list(query)) : await this.#rest.list(query)
  }

  async mintToken (sessionId: string, userId: string): Promise<MintedToken> {
    return await this.#authorized(async (rest) => await rest.mintToken(sessionId, userId))
  }

  /** Asks for the key although no call was refused yet (e.g. a relay refused a viewer without a token). */
  async askForKey (reason: string): Promise<void> {
    await this.#keys.ask(reason)
  }

  /** `call`, and again with a key after the user entered one, for as long as the API answers 401. */
  async #authorized<T> (call: (rest: SessionsApi) => Promise<T>): Promise<T> {
    for (;;) {
      const sent = this.#keys.key
      try {
        return await call(this.#rest)
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 401) throw err
        if (sent !== undefined) this.#keys.forget(sent)
        await this.#keys.ask(sent === undefined ? 'This service needs an API key (AUTH_MODE=token).' : 'The API key was refused: enter a valid one.')
      }
    }
  }
}

/** A v4 UUID; also on plain-http pages, where crypto.randomUUID is missing. */
export function randomUuid (): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[6] = (bytes[6]! & 0x0f) | 0x40
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
