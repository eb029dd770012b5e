import WebSocket from 'ws'
import { CloseCode, CloseReason } from '@streaming-service/protocol'
import { writeMessage, type OutgoingMessage } from './frames.js'
import type { SegmentStart, Sniffed } from './media/index.js'

/** Why a message (or the rest of one) did not go to an operator. */
export type SinkDropReason =
  /** An opaque stream's message dropped while the operator was over its buffer bound. */
  | 'slow_operator'
  /** A media stream's message skipped while a slow operator waits for the next keyframe segment. */
  | 'keyframe_skip'

export interface OperatorSinkOptions {
  /** The operator's user id (revocation closes every sink of it). */
  userId?: string
  /** Unsent bytes (ws bufferedAmount) above which this operator is behind. */
  maxBufferedBytes: number
  /** How long an operator may stay over the bound before it is cut off (tooSlow). */
  maxLagMs: number
  /** After the tooSlow close frame, how long to wait for the peer before destroying the socket. */
  closeGraceMs?: number
  onDrop: (reason: SinkDropReason, bytes: number) => void
  onSent: (bytes: number) => void
  onTooSlow: () => void
}

/** What a sink reads of its session's stream (SessionStream). */
export interface StreamView {
  /** Whether this node knows where in the publisher's stream it is (see SessionStream). */
  readonly synced: boolean
  readonly format: Sniffed
  /** Whether the stream is a container the relay follows (cut points are known). */
  readonly media: boolean
  /** Stream offset after the last byte. */
  readonly end: number
  /** Stream offset of the keyframe segment the snapshot's group starts with. */
  readonly groupOffset: number | undefined
  /** `[init, ...group]`, the group ending at `end`; null without a complete keyframe group. */
  snapshot (): Buffer[] | null
}

interface HeldMessage { payload: Buffer, offset: number }

/**
 * - `live`: every message goes to the socket as it comes.
 * - `finishing`: a media operator fell behind; messages are held until the
 *   next segment boundary is known, the current segment is completed up to it
 *   (so what was sent ends at a container boundary), the rest is skipped.
 * - `skipping`: nothing is sent until a keyframe segment starts and the
 *   operator has caught up; then its group so far, then live.
 * - `joining`: a late joiner waits (nothing sent) for the init segment and a
 *   keyframe group, or for the stream to turn out opaque.
 */
type Mode =
  | { name: 'live' }
  | { name: 'finishing', held: HeldMessage[], heldBytes: number }
  | { name: 'skipping' }
  | { name: 'joining' }

/**
 * One operator's outgoing side. The payload buffers are shared by every sink
 * of a session (never copied here). What this operator cannot take is dropped
 * and counted, so a slow operator never slows the publisher or the others.
 *
 * On a WebM/MP4 stream drops are cut at container boundaries: the operator's
 * bytes end where a segment ends and resume at a keyframe segment's first
 * byte, so what it receives still decodes. Opaque streams drop whole
 * messages. Memory: `maxBufferedBytes` plus one segment held while finishing.
 */
export class OperatorSink {
  readonly socket: WebSocket
  readonly userId: string | undefined
  readonly #options: OperatorSinkOptions
  #mode: Mode = { name: 'joining' }
  /** Stream offset after the last byte sent (media streams). */
  #sentEnd = 0
  /** Whether this operator got any byte of the current stream. */
  #gotBytes = false
  #behindSince: number | undefined
  /** Set when this sink closed the socket as too slow (the peer may never echo it). */
  cutOff = false

  constructor (socket: WebSocket, options: OperatorSinkOptions) {
    this.socket = socket
    this.userId = options.userId
    this.#options = options
  }

  /** Whether this operator received bytes of the current stream (a new stream then needs a new player). */
  get gotBytes (): boolean { return this.#gotBytes }

  /**
   * Where this operator starts: from the stream's first byte, live on an
   * opaque stream, with the snapshot (init + group) on a media stream, or
   * joining until one of those holds. Returns how it started.
   */
  start (stream: StreamView): 'start' | 'snapshot' | 'joining' {
    this.#mode = { name: 'joining' }
    if (!stream.synced) return 'joining'
    if (stream.end === 0 || stream.format === 'opaque') {
      this.#goLive(stream)
      return 'start'
    }
    return this.#sendSnapshot(stream) ? 'snapshot' : 'joining'
  }

  /** A new stream begins at byte 0 (a sink with bytes of the old one is closed by the hub instead). */
  restart (): void {
    this.#mode = { name: 'live' }
    this.#sentEnd = 0
    this.#gotBytes = false
  }

  /** The publisher's message at stream offset `offset`. */
  send (message: OutgoingMessage, offset: number, stream: StreamView): void {
    if (this.socket.readyState !== WebSocket.OPEN) return
    const mode = this.#mode
    const payload = message.payload
    if (mode.name === 'live') {
      if (!this.#behind()) return this.#write(message, offset)
      if (!stream.media) return this.#options.onDrop('slow_operator', payload.length)
      this.#mode = { name: 'finishing', held: [], heldBytes: 0 }
      return this.#hold(payload, offset)
    }
    if (!stream.media && stream.format !== 'undecided') {
      // The stream turned out opaque: no cut points to wait for.
      this.#goLive(stream)
      return this.#behind() ? this.#options.onDrop('slow_operator', payload.length) : this.#write(message, offset)
    }
    if (mode.name === 'finishing') return this.#hold(payload, offset)
    if (mode.name === 'skipping') {
      this.#behind()
      this.#options.onDrop('keyframe_skip', payload.length)
    }
  }

  /** A segment the scanner found (reported after its first bytes were passed to `send`). */
  segment (segment: SegmentStart, stream: StreamView): void {
    if (this.socket.readyState !== WebSocket.OPEN) return
    const mode = this.#mode
    if (mode.name === 'finishing') {
      // Still inside the segment being completed (its start was sent before falling behind).
      if (segment.offset < this.#sentEnd) return
      this.#finishAt(mode, segment.offset)
    }
    if (!segment.keyframe || stream.groupOffset !== segment.offset) return
    if (this.#mode.name === 'joining') {
      this.#sendSnapshot(stream)
    } else if (this.#mode.name === 'skipping' && this.socket.bufferedAmount <= this.#options.maxBufferedBytes / 2) {
      // Caught up: resume at this keyframe segment (the init segment was sent long ago).
      this.#sendParts(stream.snapshot()!.slice(1), stream)
    }
  }

  #sendSnapshot (stream: StreamView): boolean {
    const parts = stream.snapshot()
    if (parts === null) return false
    this.#sendParts(parts, stream)
    return true
  }

  /** Sends cached parts that end at the stream's last byte, then goes live. */
  #sendParts (parts: Buffer[], stream: StreamView): void {
    for (const part of parts) {
      this.socket.send(part, { binary: true })
      this.#options.onSent(part.length)
    }
    this.#goLive(stream)
    this.#gotBytes = true
  }

  #goLive (stream: StreamView): void {
    this.#mode = { name: 'live' }
    this.#sentEnd = stream.end
  }

  #write (message: OutgoingMessage, offset: number): void {
    writeMessage(this.socket, message)
    this.#sentEnd = offset + message.payload.length
    this.#gotBytes = true
    this.#options.onSent(message.payload.length)
  }

  #hold (payload: Buffer, offset: number): void {
    const mode = this.#mode as Extract<Mode, { name: 'finishing' }>
    this.#behind()
    mode.held.push({ payload, offset })
    mode.heldBytes += payload.length
    // A segment this long without a boundary: it cannot be completed within bounds.
    if (mode.heldBytes > this.#options.maxBufferedBytes) this.#cutOff()
  }

  /** Sends the held bytes up to `boundary` (completing the current segment), skips the rest. */
  #finishAt (mode: Extract<Mode, { name: 'finishing' }>, boundary: number): void {
    for (const { payload, offset } of mode.held) {
      const from = Math.max(offset, this.#sentEnd)
      const to = Math.min(offset + payload.length, boundary)
      if (to > from) {
        const part = from === offset && to === offset + payload.length ? payload : payload.subarray(from - offset, to - offset)
        this.socket.send(part, { binary: true })
        this.#sentEnd = to
        this.#options.onSent(part.length)
      } else {
        this.#options.onDrop('keyframe_skip', payload.length)
      }
    }
    this.#mode = { name: 'skipping' }
  }

  /** Whether the socket is over its bound now; cuts the operator off when it stayed so too long. */
  #behind (): boolean {
    if (this.socket.bufferedAmount <= this.#options.maxBufferedBytes) {
      this.#behindSince = undefined
      return false
    }
    const now = Date.now()
    this.#behindSince ??= now
    if (now - this.#behindSince > this.#options.maxLagMs) this.#cutOff()
    return true
  }

  #cutOff (): void {
    if (this.cutOff) return
    this.cutOff = true
    this.#options.onTooSlow()
    this.socket.close(CloseCode.tooSlow, CloseReason.tooSlow)
    // A stalled peer never reads the close frame; don't keep its buffer alive.
    const timer = setTimeout(() => this.socket.terminate(), this.#options.closeGraceMs ?? 5000)
    timer.unref()
    this.socket.once('close', () => clearTimeout(timer))
  }
}
