import { Emitter } from './emitter.js'
import { sniffMimeType } from './sniff.js'
import type { Viewer } from './viewer.js'

export interface MsePlayerOptions {
  /** SourceBuffer type; sniffed from the stream's first bytes when omitted. */
  mimeType?: string
  /** Playback further than this (s) behind the buffered end jumps to the live edge. */
  maxLagS?: number
  /** Where a jump lands: this far (s) before the buffered end, so the next chunk arrives before it runs dry. */
  liveEdgeS?: number
  /** Lag (s) past which playback speeds up to `catchUpRate` until it is back under half of it, short of a jump. */
  catchUpLagS?: number
  catchUpRate?: number
  /** Media kept behind the playhead (s); older media is removed. */
  keepS?: number
  /** Bytes waiting for the SourceBuffer past which the stream is given up. */
  maxQueuedBytes?: number
}

export interface PlayerStats {
  /** MediaSources created: one per stream. */
  resets: number
  appendedBytes: number
  /** Jumps to the live edge. */
  jumps: number
  /** Buffered media ahead of the playhead (s): the player's share of the latency. */
  lagS: number
  mimeType: string | null
  lastError: string | null
}

export interface PlayerEvents {
  /** This stream cannot be played on (append or decode error): start a new one. */
  fatal: Error
}

type MediaSourceClass = typeof MediaSource

function mediaSourceClass (): MediaSourceClass | undefined {
  const scope = globalThis as { MediaSource?: MediaSourceClass, ManagedMediaSource?: MediaSourceClass }
  return scope.MediaSource ?? scope.ManagedMediaSource
}

function concat (chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0))
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

/**
 * A live MediaSource player for a `<video>`: one MediaSource per stream
 * (`reset()`), an append queue, a seek into the buffer when playback has not
 * started (or sits in a gap), a slight speed-up when it lags and a jump to the
 * live edge when it falls far behind, and trimming of media already played.
 */
export class MsePlayer {
  readonly video: HTMLVideoElement
  readonly #options: Required<Omit<MsePlayerOptions, 'mimeType'>> & { mimeType: string | undefined }
  readonly #events = new Emitter<PlayerEvents>()
  readonly #stats: PlayerStats = { resets: 0, appendedBytes: 0, jumps: 0, lagS: 0, mimeType: null, lastError: null }
  #mediaSource: MediaSource | undefined
  #sourceBuffer: SourceBuffer | undefined
  #objectUrl: string | undefined
  #queue: Uint8Array[] = []
  #queuedBytes = 0
  /** Identifies the current stream; callbacks of an older MediaSource are ignored. */
  #generation = 0

  constructor (video: HTMLVideoElement, options: MsePlayerOptions = {}) {
    this.video = video
    this.#options = {
      mimeType: options.mimeType,
      maxLagS: options.maxLagS ?? 0.8,
      liveEdgeS: options.liveEdgeS ?? 0.2,
      catchUpLagS: options.catchUpLagS ?? 0.5,
      catchUpRate: options.catchUpRate ?? 1.1,
      keepS: options.keepS ?? 10,
      maxQueuedBytes: options.maxQueuedBytes ?? 16 * 1024 * 1024,
    }
    video.addEventListener('error', () => {
      const error = video.error
      if (error !== null && this.#objectUrl !== undefined && video.src === this.#objectUrl) {
        this.#fail(new Error(`media error ${error.code}: ${error.message}`))
      }
    })
  }

  get stats (): PlayerStats { return { ...this.#stats } }

  on<K extends keyof PlayerEvents> (event: K, listener: (payload: PlayerEvents[K]) => void): () => void {
    return this.#events.on(event, listener)
  }

  /** Starts a new stream on a new MediaSource; the next chunk must begin with an init segment. */
  reset (): void {
    this.#detach()
    const MediaSourceImpl = mediaSourceClass()
    if (MediaSourceImpl === undefined) {
      this.#fail(new Error('MediaSource is not supported in this browser'))
      return
    }
    const generation = ++this.#generation
    const mediaSource = new MediaSourceImpl()
    this.#mediaSource = mediaSource
    this.#objectUrl = URL.createObjectURL(mediaSource)
    // Safari's ManagedMediaSource plays only with remote playback disabled.
    if (MediaSourceImpl !== (globalThis as { MediaSource?: unknown }).MediaSource) this.video.disableRemotePlayback = true
    mediaSource.addEventListener('sourceopen', () => {
      if (generation === this.#generation) this.#pump()
    }, { once: true })
    this.video.src = this.#objectUrl
    this.video.playbackRate = 1
    this.#stats.resets++
    this.#stats.lagS = 0
  }

  /** Queues a chunk of the current stream; ignored before `reset()` or after a failure. */
  append (chunk: ArrayBuffer | ArrayBufferView): void {
    if (this.#mediaSource === undefined) return
    const bytes = chunk instanceof ArrayBuffer ? new Uint8Array(chunk) : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    this.#queue.push(bytes)
    this.#queuedBytes += bytes.byteLength
    if (this.#queuedBytes > this.#options.maxQueuedBytes) {
      this.#fail(new Error(`more than ${this.#options.maxQueuedBytes} bytes waiting for the SourceBuffer`))
      return
    }
    this.#pump()
  }

  /** Detaches from the video element. */
  destroy (): void {
    this.#detach()
    this.video.removeAttribute('src')
    this.video.load()
  }

  #detach (): void {
    this.#generation++
    this.#queue = []
    this.#queuedBytes = 0
    this.#sourceBuffer = undefined
    this.#mediaSource = undefined
    if (this.#objectUrl !== undefined) URL.revokeObjectURL(this.#objectUrl)
    this.#objectUrl = undefined
  }

  #fail (err: Error): void {
    if (this.#mediaSource === undefined && this.#stats.lastError !== null) return
    this.#stats.lastError = err.message
    this.#detach()
    this.#events.emit('fatal', err)
  }

  #createSourceBuffer (mediaSource: MediaSource): SourceBuffer | undefined {
    const head = concat(this.#queue)
    const type = this.#options.mimeType ?? sniffMimeType(head)
    if (type === undefined || mediaSourceClass()?.isTypeSupported(type) !== true) {
      this.#fail(new Error(`cannot play this stream (${type ?? 'neither WebM nor fragmented MP4'})`))
      return undefined
    }
    let sourceBuffer: SourceBuffer
    try {
      sourceBuffer = mediaSource.addSourceBuffer(type)
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)))
      return undefined
    }
    const generation = this.#generation
    sourceBuffer.addEventListener('updateend', () => {
      if (generation !== this.#generation) return
      this.#followLiveEdge()
      this.#pump()
    })
    sourceBuffer.addEventListener('error', () => {
      if (generation === this.#generation) this.#fail(new Error('the SourceBuffer rejected the stream'))
    })
    this.#stats.mimeType = type
    this.#sourceBuffer = sourceBuffer
    return sourceBuffer
  }

  #pump (): void {
    const mediaSource = this.#mediaSource
    if (mediaSource === undefined || mediaSource.readyState !== 'open') return
    let sourceBuffer = this.#sourceBuffer
    if (sourceBuffer === undefined) {
      if (this.#queue.length === 0) return
      sourceBuffer = this.#createSourceBuffer(mediaSource)
      if (sourceBuffer === undefined) return
    }
    if (sourceBuffer.updating) return
    if (this.#queue.length > 0) {
      const data = concat(this.#queue)
      this.#queue = []
      this.#queuedBytes = 0
      try {
        sourceBuffer.appendBuffer(data)
        this.#stats.appendedBytes += data.byteLength
      } catch (err) {
        if (err instanceof Error && err.name === 'QuotaExceededError') {
          this.#queue.unshift(data)
          this.#queuedBytes = data.byteLength
          this.#trim(sourceBuffer, 1)
        } else {
          this.#fail(err instanceof Error ? err : new Error(String(err)))
        }
      }
      return
    }
    this.#trim(sourceBuffer, this.#options.keepS)
  }

  /** Removes media more than `keepS` behind the playhead (with 2 s of slack, so removals stay rare). */
  #trim (sourceBuffer: SourceBuffer, keepS: number): void {
    const ranges = sourceBuffer.buffered
    if (ranges.length === 0) return
    const start = ranges.start(0)
    const cut = this.video.currentTime - keepS
    if (cut - start < (keepS > 1 ? 2 : 0)) return
    try { sourceBuffer.remove(start, cut) } catch {}
  }

  #followLiveEdge (): void {
    const video = this.video
    const ranges = video.buffered
    if (ranges.length === 0) return
    const end = ranges.end(ranges.length - 1)
    const now = video.currentTime
    let inRange = false
    for (let i = 0; i < ranges.length; i++) inRange ||= ranges.start(i) <= now && now <= ranges.end(i)
    if (!inRange) {
      // Not started yet (the stream's first timestamp is rarely 0), or stuck in a gap left by dropped media.
      let next = ranges.start(ranges.length - 1)
      for (let i = ranges.length - 1; i >= 0 && ranges.start(i) > now; i--) next = ranges.start(i)
      video.currentTime = next
    } else if (end - now > this.#options.maxLagS) {
      video.currentTime = Math.max(end - this.#options.liveEdgeS, ranges.start(ranges.length - 1))
      this.#stats.jumps++
    }
    const lag = Math.max(0, end - video.currentTime)
    this.#stats.lagS = lag
    if (lag > this.#options.catchUpLagS) video.playbackRate = this.#options.catchUpRate
    else if (lag < this.#options.catchUpLagS / 2) video.playbackRate = 1
    if (video.paused) video.play().catch(() => {})
  }
}

/**
 * Plays a viewer's stream: a new MediaSource for every connection (each
 * starts with an init segment, also after streamRestarted), and a new connection, after
 * a backoff delay, when the player gives up on a stream.
 */
export function playViewer (viewer: Viewer, player: MsePlayer): () => void {
  const unsubscribe = [
    viewer.on('stream', () => player.reset()),
    viewer.on('chunk', ({ data }) => player.append(data)),
    player.on('fatal', () => viewer.reconnect({ backoff: true })),
  ]
  return () => { for (const off of unsubscribe) off() }
}
