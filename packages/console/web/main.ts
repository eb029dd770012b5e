import { SessionApi } from './api.js'
import { PublishPanel } from './publish-panel.js'
import { readParams } from './params.js'
import { SessionPanel } from './session-panel.js'
import type { ConsoleApi } from './snapshot.js'
import { WatchPanel } from './watch-panel.js'

declare global {
  interface Window { streamingConsole: ConsoleApi }
}

const params = readParams(location)
const session = new SessionPanel(new SessionApi(params.api), params)
const publish = new PublishPanel(() => session.fields, params.ws)
const watch = new WatchPanel(() => session.fields, params.ws, params.user)

window.streamingConsole = {
  snapshot: () => ({ publisher: publish.snapshot(), viewer: watch.snapshot() }),
  reconnectPublisher: () => publish.reconnect(),
  reconnectViewer: () => watch.reconnect(),
}

if (params.publish !== undefined) void publish.start(params.publish)
if (params.watch) {
  document.body.dataset.mode = 'watch'
  watch.start()
}
