import { Publisher, recorderSource, streamUrl } from '@streaming-service/client'
import { byId, renderStats, showError } from './dom.js'
import { formatBitrate, formatBytes, formatClose, RateMeter } from './format.js'
import type { PublishSource } from './params.js'
import type { RelayTarget } from './relay-target.js'
import type { SessionFields } from './session-panel.js'
import type { PublisherSnapshot } from './snapshot.js'
import { startTestPattern } from './test-pattern.js'

interface Capture { stream: MediaStream, preview: HTMLElement, stop (): void }

async function capture (source: PublishSource): Promise<Capture> {
  if (source === 'pattern') {
    const pattern = startTestPattern(document.createElement('canvas'))
    return { stream: pattern.stream, preview: pattern.canvas, stop: pattern.stop }
  }
  if (navigator.mediaDevices === undefined) throw new Error('camera and screen need a secure page (https or localhost)')
  const stream = source === 'camera'
    ? await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false })
    : await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false })
  const video = document.createElement('video')
  video.muted = true
  video.playsInline = true
  video.srcObject = stream
  void video.play().catch(() => {})
  return { stream, preview: video, stop: () => { for (const track of stream.getTracks()) track.stop() } }
}

/**
 * Publishes a camera, the screen or the test pattern with MediaRecorder
 * (WebM/VP8, keyframe every second, 200 ms chunks), only after a click on
 * Start, and only to the relay the relay field shows.
 */
export class PublishPanel {
  readonly #session: () => SessionFields
  readonly #relay: RelayTarget
  readonly #source = byId<HTMLSelectElement>('publish-source')
  readonly #preview = byId('publish-preview')
  readonly #hint = byId('publish-hint')
  readonly #stats = byId('publish-stats')
  readonly #error = byId('publish-error')
  readonly #rate = new RateMeter()
  #publisher: Publisher | undefined
  #capture: Capture | undefined
  #sourceName = ''
  #target = ''

  constructor (session: () => SessionFields, relay: RelayTarget) {
    this.#session = session
    this.#relay = relay
    byId('publish-start').addEventListener('click', () => { void this.start(this.#source.value as PublishSource) })
    byId('publish-reconnect').addEventListener('click', () => this.reconnect())
    byId('publish-stop').addEventListener('click', () => this.stop())
    setInterval(() => this.#render(), 1000)
    this.#render()
  }

  /** What a link prepared: the source is chosen, nothing is captured or sent until Start. */
  prepare (source: PublishSource): void {
    this.#source.value = source
    this.#hint.textContent = 'This link prepared publishing: check the session and the relay, then press Start.'
  }

  async start (source: PublishSource): Promise<void> {
    this.stop()
    showError(this.#error, undefined)
    this.#hint.textContent = ''
    this.#source.value = source
    const { sessionId, clientId, streamKey } = this.#session()
    if (sessionId === undefined || clientId === undefined || streamKey === undefined) {
      showError(this.#error, new Error('publishing needs a session id, its client id and the stream key'))
      return
    }
    try {
      const base = this.#relay.base
      const captured = await capture(source)
      this.#capture = captured
      this.#preview.replaceChildren(captured.preview)
      // A track ended by the browser (e.g. "stop sharing") ends the broadcast.
      for (const track of captured.stream.getTracks()) track.addEventListener('ended', () => this.stop())
      const publisher = new Publisher({
        url: streamUrl({ base, sessionId, userId: clientId, streamKey }),
        source: recorderSource(captured.stream, { timesliceMs: 200, keyframeIntervalMs: 1000 }),
      })
      publisher.on('error', (err) => showError(this.#error, err))
      publisher.on('close', ({ action, code, reason }) => {
        if (action === 'stop' && code !== 1000) showError(this.#error, new Error(`stopped by the server: ${formatClose(code, reason)}`))
      })
      this.#publisher = publisher
      this.#sourceName = source
      this.#target = base
      publisher.start()
    } catch (err) {
      this.stop()
      showError(this.#error, err)
    }
  }

  reconnect (): void { this.#publisher?.reconnect() }

  stop (): void {
    this.#publisher?.stop()
    this.#publisher = undefined
    this.#capture?.stop()
    this.#capture = undefined
    this.#preview.replaceChildren()
  }

  snapshot (): PublisherSnapshot | null {
    const publisher = this.#publisher
    if (publisher === undefined) return null
    const stats = publisher.stats
    return {
      source: this.#sourceName,
      relay: this.#target,
      state: stats.state,
      opens: stats.opens,
      reconnects: stats.reconnects,
      messages: stats.messagesOut,
      bytes: stats.bytesOut,
      bitrateBps: this.#rate.update(stats.bytesOut),
      lastCloseCode: stats.lastCloseCode,
      lastCloseReason: stats.lastCloseReason,
      openedAt: stats.openedAt,
    }
  }

  #render (): void {
    const snapshot = this.snapshot()
    if (snapshot === null) {
      renderStats(this.#stats, [['state', 'not publishing']])
      return
    }
    renderStats(this.#stats, [
      ['sends to', snapshot.relay],
      ['source', snapshot.source],
      ['state', snapshot.state],
      ['sent', `${formatBytes(snapshot.bytes)} in ${snapshot.messages} chunks`],
      ['bitrate', formatBitrate(snapshot.bitrateBps)],
      ['reconnects', String(snapshot.reconnects)],
      ['last close', formatClose(snapshot.lastCloseCode, snapshot.lastCloseReason)],
    ])
  }
}
