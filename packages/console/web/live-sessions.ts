import { ApiError, type SessionView } from '@streaming-service/client'
import type { SessionApi } from './api.js'
import { byId, showError } from './dom.js'

const REFRESH_MS = 5000

/**
 * The live sessions (GET /sessions?status=active, SPEC §12), refreshed in
 * the background; "Watch" on one picks it for the watch panel. Background
 * refreshes never ask for the API key: in token mode the list waits for a
 * click on Refresh.
 */
export class LiveSessions {
  readonly #api: SessionApi
  readonly #list = byId<HTMLUListElement>('live-sessions')
  readonly #error = byId('live-error')
  readonly #onPick: (session: SessionView) => void
  #loading = false

  constructor (api: SessionApi, onPick: (session: SessionView) => void) {
    this.#api = api
    this.#onPick = onPick
    byId('live-refresh').addEventListener('click', () => { void this.refresh(true) })
    void this.refresh(false)
    setInterval(() => { void this.refresh(false) }, REFRESH_MS)
  }

  async refresh (ask: boolean): Promise<void> {
    if (this.#loading) return
    this.#loading = true
    try {
      const page = await this.#api.live(ask)
      this.#render(page.sessions)
      showError(this.#error, page.sessions.length === 0 ? new Error('no live session') : undefined)
    } catch (err) {
      const needsKey = err instanceof ApiError && err.status === 401
      showError(this.#error, needsKey ? new Error('listing sessions needs the API key: click Refresh to enter it') : err)
    } finally {
      this.#loading = false
    }
  }

  #render (sessions: SessionView[]): void {
    this.#list.replaceChildren(...sessions.map((session) => {
      const item = document.createElement('li')
      item.dataset.sessionId = session.session_id
      const label = document.createElement('span')
      label.textContent = `${session.session_id.slice(0, 8)} · ${session.operators_count} operator${session.operators_count === 1 ? '' : 's'} · ` +
        `publisher ${session.publisher_online ? 'online' : 'offline'}`
      label.title = `${session.session_id}, started ${session.started_at ?? '-'}`
      const watch = document.createElement('button')
      watch.type = 'button'
      watch.textContent = 'Watch'
      watch.addEventListener('click', () => this.#onPick(session))
      item.append(label, ' ', watch)
      return item
    }))
  }
}
