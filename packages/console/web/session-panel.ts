import { randomUuid, type SessionApi } from './api.js'
import { byId, renderStats, showError } from './dom.js'
import { consoleLink, type ConsoleParams } from './params.js'

export interface SessionFields {
  sessionId: string | undefined
  clientId: string | undefined
  streamKey: string | undefined
}

const POLL_MS = 2000

/** Creates a session and shows its status and operators, polled from the REST API. */
export class SessionPanel {
  readonly #api: SessionApi
  readonly #clientId = byId<HTMLInputElement>('client-id')
  readonly #sessionId = byId<HTMLInputElement>('session-id')
  readonly #streamKey = byId<HTMLInputElement>('stream-key')
  readonly #status = byId('session-status')
  readonly #operators = byId('operators')
  readonly #links = byId('session-links')
  readonly #error = byId('session-error')
  /** One poll at a time: a poll may wait for the user to enter the API key. */
  #polling = false

  constructor (api: SessionApi, params: ConsoleParams) {
    this.#api = api
    byId('api-base').textContent = `API ${api.base}`
    this.#clientId.value = params.client ?? randomUuid()
    this.#sessionId.value = params.session ?? ''
    this.#streamKey.value = params.streamKey ?? ''
    byId<HTMLFormElement>('create-form').addEventListener('submit', (event) => {
      event.preventDefault()
      void this.#create()
    })
    const applySession = () => { this.#renderLinks(); void this.#poll() }
    this.#sessionId.addEventListener('change', applySession)
    this.#streamKey.addEventListener('change', applySession)
    byId<HTMLFormElement>('session-form').addEventListener('submit', (event) => {
      event.preventDefault()
      applySession()
    })
    this.#renderLinks()
    void this.#poll()
    setInterval(() => { void this.#poll() }, POLL_MS)
  }

  /** Shows another session (picked from the live list): its stream key is not ours to know. */
  use (sessionId: string): void {
    if (this.#sessionId.value.trim() === sessionId) return
    this.#sessionId.value = sessionId
    this.#streamKey.value = ''
    this.#renderLinks()
    void this.#poll()
  }

  get fields (): SessionFields {
    const value = (input: HTMLInputElement) => input.value.trim() === '' ? undefined : input.value.trim()
    return { sessionId: value(this.#sessionId), clientId: value(this.#clientId), streamKey: value(this.#streamKey) }
  }

  async #create (): Promise<void> {
    showError(this.#error, undefined)
    try {
      const created = await this.#api.create(this.#clientId.value.trim())
      this.#sessionId.value = created.session_id
      this.#clientId.value = created.client_id
      this.#streamKey.value = created.stream_key
      this.#renderLinks()
      await this.#poll()
    } catch (err) {
      showError(this.#error, err)
    }
  }

  #renderLinks (): void {
    const { sessionId, clientId, streamKey } = this.fields
    if (sessionId === undefined) {
      this.#links.replaceChildren()
      return
    }
    const link = (text: string, href: string) => {
      const anchor = document.createElement('a')
      anchor.href = href
      anchor.textContent = text
      return anchor
    }
    const api = this.#api.base === location.origin ? undefined : this.#api.base
    const watch = link('Operator link', consoleLink(location, { api, session: sessionId, watch: '1' }))
    if (clientId === undefined || streamKey === undefined) {
      this.#links.replaceChildren(watch)
      return
    }
    const publish = consoleLink(location, { api, session: sessionId, client: clientId, stream_key: streamKey, publish: 'pattern' })
    this.#links.replaceChildren(link('Publisher link (holds the stream key; publishing waits for Start)', publish), watch)
  }

  async #poll (): Promise<void> {
    const { sessionId } = this.fields
    if (sessionId === undefined) {
      renderStats(this.#status, [['status', 'no session']])
      this.#operators.replaceChildren()
      return
    }
    if (this.#polling) return
    this.#polling = true
    try {
      const [status, operators] = await Promise.all([this.#api.status(sessionId), this.#api.operators(sessionId)])
      renderStats(this.#status, [
        ['status', status.status],
        ['publisher', status.publisher_online ? 'online' : 'offline'],
        ['operators', String(status.operators_count)],
      ])
      this.#operators.replaceChildren(...operators.map((operator) => {
        const item = document.createElement('li')
        item.textContent = `${operator.user_id} · ${operator.online ? 'online' : 'offline'}`
        item.className = operator.online ? 'online' : 'offline'
        return item
      }))
      showError(this.#error, undefined)
    } catch (err) {
      renderStats(this.#status, [['status', 'unknown']])
      showError(this.#error, new Error(`session status from ${this.#api.base}: ${err instanceof Error ? err.message : String(err)}`))
    } finally {
      this.#polling = false
    }
  }
}
