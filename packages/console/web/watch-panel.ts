import { CloseCode, MsePlayer, playViewer, streamUrl, Viewer, type CredentialSource } from '@streaming-service/client'
import { randomUuid } from './api.js'
import { byId, renderStats, showError } from './dom.js'
import { formatBitrate, formatBytes, formatClose, formatMs, median, RateMeter } from './format.js'
import { LatencyProbe } from './latency-probe.js'
import type { RelayTarget } from './relay-target.js'
import type { SessionFields } from './session-panel.js'
import type { ViewerSnapshot } from './snapshot.js'

/** Frames shown are tracked this often (ms); the latency is read every other tick. */
const TICK_MS = 50

/** The operator's token for a session and user id (token mode), or undefined (open mode, or none at hand). */
export type OperatorTokens = (sessionId: string, userId: string) => CredentialSource | undefined

export interface WatchPanelOptions {
  session: () => SessionFields
  relay: RelayTarget
  userId: string | undefined
  tokens: OperatorTokens
  /** The relay refused the viewer for want of a valid token (4401): get one (e.g. the API key to mint with); then it starts again. */
  onUnauthorized: () => Promise<void>
}

interface Watching {
  relay: string
  viewer: Viewer
  player: MsePlayer
  probe: LatencyProbe
  startedAt: number
  firstFrameAt: number | null
  streamFirstFrameAt: number | null
  lastFrameAt: number | null
  lastCurrentTime: number
  unbind: () => void
}

/**
 * Watches the session as an operator: the SDK's Viewer playing into a
 * `<video>` through MsePlayer, from the relay the relay field shows, with the
 * operator's token when there is one (asked for anew at every reconnect).
 */
export class WatchPanel {
  readonly #options: WatchPanelOptions
  readonly #user = byId<HTMLInputElement>('watch-user')
  readonly #video = byId<HTMLVideoElement>('watch-video')
  readonly #stats = byId('watch-stats')
  readonly #error = byId('watch-error')
  readonly #rate = new RateMeter()
  #watching: Watching | undefined
  #ticks = 0

  constructor (options: WatchPanelOptions) {
    this.#options = options
    this.#user.value = options.userId ?? `operator-${randomUuid().slice(0, 8)}`
    byId('watch-start').addEventListener('click', () => this.start())
    byId('watch-stop').addEventListener('click', () => this.stop())
    setInterval(() => this.#tick(), TICK_MS)
    setInterval(() => this.#render(), 1000)
    this.#render()
  }

  start (): void {
    this.stop()
    showError(this.#error, undefined)
    const { sessionId } = this.#options.session()
    const userId = this.#user.value.trim()
    if (sessionId === undefined || userId === '') {
      showError(this.#error, new Error('watching needs a session id and a user id'))
      return
    }
    let relay: string
    try {
      relay = this.#options.relay.base
    } catch (err) {
      showError(this.#error, err)
      return
    }
    const token = this.#options.tokens(sessionId, userId)
    const viewer = new Viewer({ url: streamUrl({ base: relay, sessionId, userId }), token })
    const player = new MsePlayer(this.#video)
    const watching: Watching = {
      relay,
      viewer,
      player,
      probe: new LatencyProbe(this.#video),
      startedAt: Date.now(),
      firstFrameAt: null,
      streamFirstFrameAt: null,
      lastFrameAt: null,
      lastCurrentTime: Number.NaN,
      unbind: playViewer(viewer, player),
    }
    viewer.on('stream', () => {
      watching.streamFirstFrameAt = null
      watching.lastCurrentTime = Number.NaN
    })
    viewer.on('close', ({ action, code, reason }) => {
      if (action !== 'stop' || code === CloseCode.normal) return
      showError(this.#error, new Error(`stopped by the server: ${formatClose(code, reason)}`))
      if (code === CloseCode.unauthorized) void this.#options.onUnauthorized().then(() => { if (this.#watching === watching) this.start() })
    })
    player.on('fatal', (err) => showError(this.#error, new Error(`player: ${err.message}; reconnecting`)))
    this.#watching = watching
    viewer.start()
  }

  reconnect (): void { this.#watching?.viewer.reconnect() }

  stop (): void {
    const watching = this.#watching
    if (watching === undefined) return
    this.#watching = undefined
    watching.unbind()
    watching.viewer.stop()
    watching.player.destroy()
  }

  snapshot (): ViewerSnapshot | null {
    const watching = this.#watching
    if (watching === undefined) return null
    const stats = watching.viewer.stats
    const player = watching.player.stats
    return {
      relay: watching.relay,
      state: stats.state,
      opens: stats.opens,
      reconnects: stats.reconnects,
      messages: stats.messagesIn,
      bytes: stats.bytesIn,
      bitrateBps: this.#rate.update(stats.bytesIn),
      lastCloseCode: stats.lastCloseCode,
      lastCloseReason: stats.lastCloseReason,
      openedAt: stats.openedAt,
      startedAt: watching.startedAt,
      firstFrameAt: watching.firstFrameAt,
      streamFirstFrameAt: watching.streamFirstFrameAt,
      lastFrameAt: watching.lastFrameAt,
      videoWidth: this.#video.videoWidth,
      videoHeight: this.#video.videoHeight,
      currentTime: this.#video.currentTime,
      playerResets: player.resets,
      jumps: player.jumps,
      lagS: player.lagS,
      mimeType: player.mimeType,
      playerError: player.lastError,
      latency: watching.probe.samples,
    }
  }

  /** Frames count as shown while the playhead moves by playback (not by a seek) with a picture size known. */
  #tick (): void {
    const watching = this.#watching
    if (watching === undefined) return
    const video = this.#video
    const moved = video.videoWidth > 0 && !video.seeking && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA &&
      !Number.isNaN(watching.lastCurrentTime) && video.currentTime !== watching.lastCurrentTime
    watching.lastCurrentTime = video.currentTime
    if (!moved) return
    const now = Date.now()
    watching.lastFrameAt = now
    watching.firstFrameAt ??= now
    watching.streamFirstFrameAt ??= now
    if (++this.#ticks % 2 === 0) watching.probe.sample()
  }

  #render (): void {
    const snapshot = this.snapshot()
    if (snapshot === null) {
      renderStats(this.#stats, [['state', 'not watching']])
      return
    }
    const recent = snapshot.latency.filter(([at]) => at > Date.now() - 5000).map(([, ms]) => ms)
    renderStats(this.#stats, [
      ['from', snapshot.relay],
      ['state', snapshot.state],
      ['received', `${formatBytes(snapshot.bytes)} in ${snapshot.messages} messages`],
      ['bitrate', formatBitrate(snapshot.bitrateBps)],
      ['video', snapshot.videoWidth === 0 ? '—' : `${snapshot.videoWidth}×${snapshot.videoHeight} ${snapshot.mimeType ?? ''}`],
      ['buffer ahead', `${snapshot.lagS.toFixed(2)} s`],
      ['latency (pattern)', recent.length === 0 ? '— (publish the test pattern to measure)' : `${formatMs(median(recent))} median of 5 s`],
      ['first frame', formatMs(snapshot.firstFrameAt === null ? null : snapshot.firstFrameAt - snapshot.startedAt)],
      ['reconnects', String(snapshot.reconnects)],
      ['jumps to live', String(snapshot.jumps)],
      ['last close', formatClose(snapshot.lastCloseCode, snapshot.lastCloseReason)],
    ])
  }
}
