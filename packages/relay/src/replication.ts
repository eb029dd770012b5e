import type { Counter } from 'prom-client'
import type { Backplane, Frame, Logger } from '@streaming-service/core'
import type { LatencyRecorder } from './latency-histogram.js'
import type { LocalSession } from './local-session.js'
import { decodeStreamState, encodeStreamState, FrameKind, parseSignal, signalFrame, type Signal } from './wire.js'

/** First wait before asking again for a stream state that did not come (doubles up to SYNC_RETRY_MAX_MS). */
const SYNC_RETRY_MS = 500
const SYNC_RETRY_MAX_MS = 5000

/**
 * After this many media frames in a row from a node other than the stream's
 * origin, that node is taken to be the publisher's now (its "publisher" signal
 * was lost); fewer are the tail of a replaced publisher and are ignored.
 */
const FOREIGN_FRAMES_LIMIT = 25

export interface ReplicationContext {
  backplane: Backplane
  log: Logger
  /** Bound once per node: these are observed per frame. */
  remoteLatency: LatencyRecorder
  streamSyncs: Pick<Counter, 'inc'>
  /** Frames of the followed publisher that never reached this node (a gap in its numbers). */
  framesLost: (count: number) => void
  /** A `finished` signal came for the session: the node refuses and closes its sockets. */
  onFinished: (sessionId: string) => void
  /** A `revoked` signal came: the node closes that operator's sockets. */
  onRevoked: (sessionId: string, userId: string) => void
}

/**
 * How one session's stream crosses nodes: the relay's half of the backplane
 * protocol (frame kinds and signals in wire.ts).
 *
 * - **Sequence.** The publisher's node numbers what it publishes on the
 *   session's channel (media, stream states, the "publisher" signal); the
 *   other nodes follow that origin's numbers, and a gap means frames were lost.
 * - **Takeover.** A newer publisher connection anywhere announces its epoch;
 *   older publishers are replaced and the stream restarts at its next frame.
 * - **Late join.** A node that starts following a session mid-stream asks for
 *   its state ("sync-request"); the publisher's node answers in its own
 *   sequence, so the seam with the live frames is exact.
 * - **Loss.** An opaque stream just goes on; a WebM/MP4 stream no longer
 *   decodes for operators that got bytes of it: they reconnect (stream
 *   interrupted) and the node syncs again.
 */
export class Replica {
  readonly #session: LocalSession
  readonly #context: ReplicationContext
  /** Sequence number of this node's next publication on the session's channel. */
  #seq = 0
  /** The node whose publisher feeds the stream, its publisher's epoch, and the next number expected from it. */
  #origin: string | undefined
  #epoch = -1
  #nextSeq: number | undefined
  #foreignFrames = 0
  /** While this node waits for a stream state: when to ask again. */
  #syncRetry: NodeJS.Timeout | undefined
  /** A stream-state reply is queued (requests arriving together get one). */
  #replyQueued = false
  #closed = false

  constructor (session: LocalSession, context: ReplicationContext) {
    this.#session = session
    this.#context = context
  }

  get #nodeId (): string { return this.#context.backplane.nodeId }

  /** A local publisher connection with `epoch` was admitted; `won` when it is this node's publisher now. */
  publisherAttached (epoch: number, won: boolean): void {
    this.#publish(signalFrame({ type: 'publisher', epoch }, this.#seq++))
    if (won) this.#restart(this.#nodeId, epoch, undefined)
  }

  /** A message of the local publisher, already delivered on this node: once to the other nodes. */
  forward (payload: Buffer, binary: boolean, sentAt: number): void {
    this.#publish({ kind: binary ? FrameKind.mediaBinary : FrameKind.mediaText, seq: this.#seq++, payload, sentAt })
  }

  /** An operator waits on this node: make sure the node follows the stream. */
  follow (): void {
    if (!this.#session.stream.synced) this.#requestSync()
  }

  /** Stops timers; later frames and replies are ignored. */
  close (): void {
    this.#closed = true
    clearTimeout(this.#syncRetry)
  }

  onFrame (frame: Frame, origin: string): void {
    if (this.#closed) return
    const stream = this.#session.stream
    if (frame.kind === FrameKind.signal) return this.#onSignal(frame, origin)
    if (frame.kind === FrameKind.streamState && !stream.synced) return this.#onStreamState(frame, origin)
    if (frame.kind !== FrameKind.mediaBinary && frame.kind !== FrameKind.mediaText && frame.kind !== FrameKind.streamState) return
    const fit = this.#fit(origin, frame.seq)
    if (fit === 'ignore' || (fit === 'lost' && !this.#lost())) return
    if (frame.kind === FrameKind.streamState) return
    this.#session.deliver(frame.payload, frame.kind === FrameKind.mediaBinary)
    if (frame.sentAt !== undefined) this.#context.remoteLatency.observe(Math.max(0, Date.now() - frame.sentAt) / 1000)
  }

  /** Whether a frame from `origin` continues the stream, is not part of it, or shows that frames were lost. */
  #fit (origin: string, seq: number): 'follow' | 'ignore' | 'lost' {
    if (!this.#session.stream.synced) return 'ignore'
    if (origin !== this.#origin) {
      if (++this.#foreignFrames <= FOREIGN_FRAMES_LIMIT) return 'ignore'
      this.#origin = origin
      this.#nextSeq = seq + 1
      return 'lost'
    }
    this.#foreignFrames = 0
    const expected = this.#nextSeq
    this.#nextSeq = seq + 1
    if (expected === undefined || seq === expected) return 'follow'
    if (seq > expected) this.#context.framesLost(seq - expected)
    return 'lost'
  }

  /** A new stream begins with the next frame of `origin` (numbered `nextSeq` when it comes through the backplane). */
  #restart (origin: string, epoch: number, nextSeq: number | undefined): void {
    this.#origin = origin
    this.#epoch = epoch
    this.#nextSeq = nextSeq
    this.#foreignFrames = 0
    clearTimeout(this.#syncRetry)
    this.#syncRetry = undefined
    this.#session.restartStream()
  }

  /** Frames were lost: true when the stream goes on regardless (opaque), false when the node must sync again. */
  #lost (): boolean {
    if (this.#session.stream.format === 'opaque') return true
    this.#context.log.warn({ sessionId: this.#session.id }, 'frames of a media stream were lost: operators reconnect')
    this.#nextSeq = undefined
    this.#session.interruptStream()
    this.#requestSync()
    return false
  }

  /** Asks the publisher's node for the stream's state, again and again while none comes and operators wait. */
  #requestSync (retryMs = SYNC_RETRY_MS): void {
    if (this.#syncRetry !== undefined && retryMs === SYNC_RETRY_MS) return
    this.#syncRetry = setTimeout(() => {
      const waiting = !this.#closed && !this.#session.stream.synced && this.#session.operators.size > 0
      if (waiting) this.#requestSync(Math.min(retryMs * 2, SYNC_RETRY_MAX_MS))
      else this.#syncRetry = undefined
    }, retryMs)
    this.#syncRetry.unref()
    // Asked before the subscription exists, the answer could pass this node by.
    void this.#context.backplane.whenSubscribed(this.#session.id).then(() => {
      if (!this.#closed && !this.#session.stream.synced) this.#publish(signalFrame({ type: 'sync-request' }))
    })
  }

  #onStreamState (frame: Frame, origin: string): void {
    const state = decodeStreamState(frame.payload)
    if (state === null) {
      this.#context.log.warn({ sessionId: this.#session.id }, 'ignoring a malformed stream-state frame')
      return
    }
    this.#session.stream.seed(state)
    this.#origin = origin
    this.#epoch = state.epoch
    this.#nextSeq = frame.seq + 1
    this.#foreignFrames = 0
    clearTimeout(this.#syncRetry)
    this.#syncRetry = undefined
    this.#context.streamSyncs.inc()
    this.#session.restartOperators()
  }

  /** Answers sync requests once per turn of the event loop, in the stream's sequence. */
  #queueStreamState (): void {
    if (this.#replyQueued) return
    this.#replyQueued = true
    setImmediate(() => {
      this.#replyQueued = false
      if (this.#closed || this.#session.publisher === undefined) return
      const state = this.#session.stream.state(this.#epoch)
      if (state === null) return
      this.#publish({ kind: FrameKind.streamState, seq: this.#seq++, payload: encodeStreamState(state), sentAt: Date.now() })
    })
  }

  #onSignal (frame: Frame, origin: string): void {
    const signal: Signal | null = parseSignal(frame)
    if (signal === null) {
      this.#context.log.warn({ sessionId: this.#session.id }, 'ignoring a malformed signal')
      return
    }
    switch (signal.type) {
      case 'finished':
        this.#context.onFinished(this.#session.id)
        break
      case 'publisher':
        this.#session.publisherElsewhere(signal.epoch)
        if (signal.epoch > this.#epoch) this.#restart(origin, signal.epoch, frame.seq + 1)
        break
      case 'revoked':
        this.#context.onRevoked(this.#session.id, signal.userId)
        break
      case 'sync-request':
        if (this.#session.publisher !== undefined && this.#origin === this.#nodeId) this.#queueStreamState()
        break
    }
  }

  #publish (frame: Frame): void {
    this.#context.backplane.publish(this.#session.id, frame)
  }
}
