// What the page exposes as `window.streamingConsole.snapshot()`: plain JSON,
// for people poking at the console and for the browser end-to-end test. No DOM here.
import type { ConnectionState } from '@streaming-service/client'

export interface ConnectionSnapshot {
  state: ConnectionState
  opens: number
  reconnects: number
  messages: number
  bytes: number
  bitrateBps: number
  lastCloseCode: number | null
  lastCloseReason: string
  /** Date.now() when the current connection opened. */
  openedAt: number | null
}

export interface PublisherSnapshot extends ConnectionSnapshot {
  source: string
  /** The relay the media goes to. */
  relay: string
}

export interface ViewerSnapshot extends ConnectionSnapshot {
  /** The relay watched from. */
  relay: string
  /** Date.now() when watching started (the first connection attempt). */
  startedAt: number
  /** Date.now() of the first frame shown, of the current stream's first frame, and of the latest. */
  firstFrameAt: number | null
  streamFirstFrameAt: number | null
  lastFrameAt: number | null
  videoWidth: number
  videoHeight: number
  currentTime: number
  playerResets: number
  jumps: number
  /** Buffered media ahead of the playhead (s). */
  lagS: number
  mimeType: string | null
  playerError: string | null
  /** Glass-to-glass latency read from the test pattern: [Date.now(), ms] pairs, oldest first. */
  latency: Array<[number, number]>
}

export interface ConsoleSnapshot {
  publisher: PublisherSnapshot | null
  viewer: ViewerSnapshot | null
}

/** `window.streamingConsole`. */
export interface ConsoleApi {
  snapshot (): ConsoleSnapshot
  /** A new publisher connection, hence a new stream (the viewers get streamRestarted and start over). */
  reconnectPublisher (): void
  reconnectViewer (): void
}
