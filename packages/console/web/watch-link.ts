import type { SessionApi } from './api.js'
import { byId, showError } from './dom.js'
import { consoleLink } from './params.js'
import type { SessionFields } from './session-panel.js'

/**
 * The "Mint watch link" form: mints an operator token (with the API key) and
 * shows a link to this page that watches with it. The token rides in the
 * fragment, which no server sees, and the page sends no Referer, so opening
 * the link leaks it nowhere; whoever opens it needs no API key.
 */
export function mountWatchLinks (api: SessionApi, session: () => SessionFields, userId: string): void {
  const user = byId<HTMLInputElement>('mint-user')
  const output = byId('minted-link')
  const error = byId('session-error')
  user.value = userId
  byId<HTMLFormElement>('mint-form').addEventListener('submit', (event) => {
    event.preventDefault()
    void mint()
  })

  async function mint (): Promise<void> {
    const { sessionId } = session()
    const operator = user.value.trim()
    if (sessionId === undefined || operator === '') {
      showError(error, new Error('a watch link needs a session id and an operator id'))
      return
    }
    try {
      const minted = await api.mintToken(sessionId, operator)
      const anchor = document.createElement('a')
      anchor.href = consoleLink(location, {
        api: api.base === location.origin ? undefined : api.base, session: sessionId, user: operator, watch: '1',
      }, { token: minted.token })
      anchor.target = '_blank'
      anchor.rel = 'noopener noreferrer'
      anchor.textContent = `Watch link for ${operator} (holds a token valid until ${new Date(minted.expires_at).toLocaleTimeString()})`
      output.replaceChildren(anchor)
      showError(error, undefined)
    } catch (err) {
      showError(error, err)
    }
  }
}
