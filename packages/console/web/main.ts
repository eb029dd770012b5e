import { wsOrigin, type CredentialSource } from '@streaming-service/client'
import { ApiKeyPrompt } from './api-key-prompt.js'
import { SessionApi } from './api.js'
import { LiveSessions } from './live-sessions.js'
import { PublishPanel } from './publish-panel.js'
import { readParams } from './params.js'
import { RelayTarget } from './relay-target.js'
import { SessionPanel } from './session-panel.js'
import type { ConsoleApi } from './snapshot.js'
import { mountWatchLinks } from './watch-link.js'
import { WatchPanel } from './watch-panel.js'

declare global {
  interface Window { streamingConsole: ConsoleApi }
}

const params = readParams(location)
const api = new SessionApi(params.api, new ApiKeyPrompt(params.api))
const session = new SessionPanel(api, params)
const relay = new RelayTarget(wsOrigin(location), params.ws)
const publish = new PublishPanel(() => session.fields, relay)
let linkToken = params.token
const watch = new WatchPanel({
  session: () => session.fields,
  relay,
  userId: params.user,
  // A link's token for the session and user it was minted for; otherwise, with an API key, a fresh token per connection.
  tokens: (sessionId: string, userId: string): CredentialSource | undefined => {
    if (linkToken !== undefined && sessionId === params.session && userId === params.user) return linkToken
    if (api.hasKey) return async () => (await api.mintToken(sessionId, userId)).token
    return undefined
  },
  onUnauthorized: async () => {
    linkToken = undefined
    await api.askForKey('Watching needs an operator token: enter the API key to mint one (or open a fresh watch link).')
  },
})
mountWatchLinks(api, () => session.fields, params.user ?? 'operator-1')
// eslint-disable-next-line no-new -- it lives as long as the page
new LiveSessions(api, (picked) => {
  session.use(picked.session_id)
  watch.start()
})

window.streamingConsole = {
  snapshot: () => ({ publisher: publish.snapshot(), viewer: watch.snapshot() }),
  reconnectPublisher: () => publish.reconnect(),
  reconnectViewer: () => watch.reconnect(),
}

// A link may prepare publishing, never start it: capturing and sending media waits for a click on Start.
if (params.publish !== undefined) publish.prepare(params.publish)
if (params.watch) {
  document.body.dataset.mode = 'watch'
  watch.start()
}
