import type WebSocket from 'ws'
import { controlFrame, parseControl, type Backplane, type ControlMessage, type Frame, type Logger, type Unsubscribe } from '@streaming-service/core'
import { CloseCode } from './close-codes.js'
import type { Counter, Histogram } from 'prom-client'
import type { GopCacheOptions } from './media/index.js'
import type { RelayMetrics } from './metrics.js'
import type { OperatorSink } from './operator-sink.js'
import { SessionStream } from './stream.js'
import { decodeStreamState, encodeStreamState } from './stream-state.js'

interface Publisher { socket: WebSocket, epoch: number }

interface LocalSession {
  id: string
  publisher: Publisher | undefined
  operators: Set<OperatorSink>
  stream: SessionStream
  unsubscribe: Unsubscribe
  /**
   * Sequence number of this node's publications of the session's stream
   * (media, stream-state, the "publisher" signal); other nodes find gaps by it.
   */
  seq: number
  /** While this node waits for a stream-state: when to ask again. */
  syncRetry: NodeJS.Timeout | undefined
  /** A stream-state reply is queued (requests arriving together get one). */
  replyQueued: boolean
}

/** First wait before asking again for a stream-state that did not come (doubles up to SYNC_RETRY_MAX_MS). */
const SYNC_RETRY_MS = 500
const SYNC_RETRY_MAX_MS = 5000

/** How long a finished session id is remembered, to refuse sockets admitted just before the end. */
const FINISHED_MEMORY_MS = 10 * 60_000

/**
 * Who watches what on this node. A publisher's message goes straight to the
 * local operators (no backplane round trip) and once to the backplane for the
 * other nodes; frames from other nodes go to the local operators. The same
 * payload buffer is handed to every socket.
 *
 * A node subscribes to a session's channel while it has any local socket of
 * it: operators need the media, publishers need the control messages
 * ("finished", "publisher replaced").
 *
 * Late joiners (SPEC §5): each session's stream is followed by a
 * SessionStream (init segment + current group of pictures). A node that
 * subscribes mid-stream asks the publisher's node for its state
 * ("sync-request"); the answer travels on the session's channel in the
 * publisher's sequence, so the seam with the live frames is exact. When a new
 * publisher connection starts a new stream, operators that already got bytes
 * of a WebM/MP4 stream are closed with 4205 and reconnect to a fresh player.
 */
export class Hub {
  readonly #sessions = new Map<string, LocalSession>()
  readonly #finished = new Map<string, number>()
  readonly #backplane: Backplane
  readonly #log: Logger
  // Bound once: these run per message.
  readonly #messagesIn: Counter.Internal
  readonly #bytesIn: Counter.Internal
  readonly #localLatency: Histogram.Internal<'path'>
  readonly #remoteLatency: Histogram.Internal<'path'>
  readonly #metrics: RelayMetrics
  readonly #cacheOptions: GopCacheOptions

  constructor (options: { backplane: Backplane, metrics: RelayMetrics, logger: Logger, cache?: GopCacheOptions }) {
    this.#backplane = options.backplane
    this.#log = options.logger
    this.#metrics = options.metrics
    this.#cacheOptions = options.cache ?? {}
    options.metrics.cacheBytes.source = () => {
      let bytes = 0
      for (const session of this.#sessions.values()) bytes += session.stream.retainedBytes
      return bytes
    }
    this.#messagesIn = options.metrics.messages.labels('in')
    this.#bytesIn = options.metrics.bytes.labels('in')
    this.#localLatency = options.metrics.latency.labels('local')
    this.#remoteLatency = options.metrics.latency.labels('remote')
  }

  /** Whether this node saw the session finish (it refuses new sockets of it). */
  isFinished (sessionId: string): boolean {
    const at = this.#finished.get(sessionId)
    return at !== undefined && Date.now() - at < FINISHED_MEMORY_MS
  }

  #session (sessionId: string): LocalSession {
    let session = this.#sessions.get(sessionId)
    if (session === undefined) {
      const unsubscribe = this.#backplane.subscribe(sessionId, (frame, origin) => this.#onRemoteFrame(sessionId, frame, origin))
      session = {
        id: sessionId,
        publisher: undefined,
        operators: new Set(),
        stream: new SessionStream(this.#cacheOptions),
        unsubscribe,
        seq: 0,
        syncRetry: undefined,
        replyQueued: false,
      }
      this.#sessions.set(sessionId, session)
    }
    return session
  }

  #release (sessionId: string, session: LocalSession): void {
    if (session.publisher === undefined && session.operators.size === 0 && this.#sessions.get(sessionId) === session) {
      this.#sessions.delete(sessionId)
      session.stream.release()
      session.unsubscribe()
      clearTimeout(session.syncRetry)
    }
  }

  /**
   * Makes `socket` the session's publisher on this node with the epoch its
   * admission took, replacing (4409) an older local one, and tells the other
   * nodes so they replace theirs. Returns the function that detaches it.
   */
  attachPublisher (sessionId: string, epoch: number, socket: WebSocket): () => void {
    const session = this.#session(sessionId)
    const previous = session.publisher
    const publisher: Publisher = { socket, epoch }
    // The newer epoch wins, whichever connection attached first.
    const [winner, loser] = previous === undefined || previous.epoch < epoch ? [publisher, previous] : [previous, publisher]
    session.publisher = winner
    loser?.socket.close(CloseCode.conflict, 'replaced by a newer publisher connection')
    this.#sendControl(sessionId, session, { type: 'publisher', epoch })
    if (winner === publisher) this.#restart(session, this.#backplane.nodeId, epoch)
    return () => {
      if (session.publisher === publisher) session.publisher = undefined
      this.#release(sessionId, session)
    }
  }

  attachOperator (sessionId: string, sink: OperatorSink): () => void {
    const session = this.#session(sessionId)
    session.operators.add(sink)
    this.#metrics.operatorStarts.inc({ start: sink.start(session.stream) })
    if (!session.stream.synced) this.#requestSync(session)
    return () => {
      session.operators.delete(sink)
      this.#release(sessionId, session)
    }
  }

  /** A message from the local publisher: local operators first, then the other nodes. */
  publish (sessionId: string, payload: Buffer, binary: boolean): void {
    const session = this.#sessions.get(sessionId)
    if (session === undefined) return
    const sentAt = Date.now()
    this.#messagesIn.inc()
    this.#bytesIn.inc(payload.length)
    this.#deliver(session, payload, binary)
    this.#localLatency.observe((Date.now() - sentAt) / 1000)
    this.#backplane.publish(sessionId, { kind: binary ? 'media-binary' : 'media-text', seq: session.seq++, payload, sentAt })
  }

  /** False while the backplane is saturated: pause the publisher until `whenWritable()`. */
  get writable (): boolean {
    return this.#backplane.writable
  }

  async whenWritable (): Promise<void> {
    await this.#backplane.whenWritable()
  }

  /** The stream's next message: into the cache, to every operator, then the segments it completed. */
  #deliver (session: LocalSession, payload: Buffer, binary: boolean): void {
    const stream = session.stream
    const offset = stream.end
    const segments = stream.push(payload, binary)
    for (const sink of session.operators) sink.send(payload, binary, offset, stream)
    for (const segment of segments) {
      for (const sink of session.operators) sink.segment(segment, stream)
    }
  }

  #onRemoteFrame (sessionId: string, frame: Frame, origin: string): void {
    const session = this.#sessions.get(sessionId)
    if (session === undefined) return
    if (frame.kind === 'control') {
      this.#onControl(sessionId, session, frame, origin)
      return
    }
    if (frame.kind === 'stream-state' && !session.stream.synced) {
      this.#onStreamState(session, frame, origin)
      return
    }
    const fit = session.stream.fit(origin, frame.seq)
    if (fit === 'ignore' || (fit === 'lost' && !this.#lost(session))) return
    if (frame.kind === 'stream-state') return
    this.#deliver(session, frame.payload, frame.kind === 'media-binary')
    if (frame.sentAt !== undefined) this.#remoteLatency.observe(Math.max(0, Date.now() - frame.sentAt) / 1000)
  }

  /** A new stream begins: operators with bytes of an old WebM/MP4 stream need a new player. */
  #restart (session: LocalSession, origin: string, epoch: number, nextSeq?: number): void {
    const wasMedia = session.stream.media
    session.stream.restart(origin, epoch, nextSeq)
    clearTimeout(session.syncRetry)
    session.syncRetry = undefined
    for (const sink of session.operators) {
      if (wasMedia && sink.gotBytes) sink.socket.close(CloseCode.streamRestarted, 'stream restarted: reconnect')
      else sink.restart()
    }
  }

  /**
   * Frames of the stream were lost on the way here. An opaque stream just goes
   * on (returns true); a WebM/MP4 stream no longer decodes for the operators
   * that got bytes of it: they reconnect (4205) and the node syncs again.
   */
  #lost (session: LocalSession): boolean {
    const stream = session.stream
    if (stream.format === 'opaque') return true
    this.#log.warn({ sessionId: session.id }, 'frames of a media stream were lost: operators reconnect')
    stream.unsync()
    for (const sink of session.operators) {
      if (sink.gotBytes) sink.socket.close(CloseCode.streamRestarted, 'stream interrupted: reconnect')
      else sink.start(stream)
    }
    this.#requestSync(session)
    return false
  }

  /** Asks the publisher's node for the stream's state, again and again while none comes and operators wait. */
  #requestSync (session: LocalSession, retryMs = SYNC_RETRY_MS): void {
    if (session.syncRetry !== undefined && retryMs === SYNC_RETRY_MS) return
    session.syncRetry = setTimeout(() => {
      if (this.#sessions.get(session.id) === session && !session.stream.synced && session.operators.size > 0) {
        this.#requestSync(session, Math.min(retryMs * 2, SYNC_RETRY_MAX_MS))
      } else {
        session.syncRetry = undefined
      }
    }, retryMs)
    session.syncRetry.unref()
    // Asked before the subscription exists, the answer could pass this node by.
    void this.#backplane.whenSubscribed(session.id).then(() => {
      if (!session.stream.synced && this.#sessions.get(session.id) === session) this.#sendControl(session.id, session, { type: 'sync-request' })
    })
  }

  #onStreamState (session: LocalSession, frame: Frame, origin: string): void {
    const state = decodeStreamState(frame.payload)
    if (state === null) {
      this.#log.warn({ sessionId: session.id }, 'ignoring a malformed stream-state frame')
      return
    }
    session.stream.seed(state, origin, frame.seq)
    clearTimeout(session.syncRetry)
    session.syncRetry = undefined
    this.#metrics.streamSyncs.inc()
    for (const sink of session.operators) this.#metrics.operatorStarts.inc({ start: sink.start(session.stream) })
  }

  /** Answers sync requests once per turn of the event loop, in the stream's sequence. */
  #queueStreamState (session: LocalSession): void {
    if (session.replyQueued) return
    session.replyQueued = true
    setImmediate(() => {
      session.replyQueued = false
      if (this.#sessions.get(session.id) !== session || session.publisher === undefined) return
      const state = session.stream.state()
      if (state === null) return
      this.#backplane.publish(session.id, { kind: 'stream-state', seq: session.seq++, payload: encodeStreamState(state), sentAt: Date.now() })
    })
  }

  #onControl (sessionId: string, session: LocalSession, frame: Frame, origin: string): void {
    const message = parseControl(frame)
    if (message === null) {
      this.#log.warn({ sessionId }, 'ignoring a malformed control message')
      return
    }
    switch (message.type) {
      case 'finished':
        this.#closeLocal(sessionId, session, CloseCode.finished, 'session finished')
        break
      case 'publisher':
        if (session.publisher !== undefined && session.publisher.epoch < message.epoch) {
          session.publisher.socket.close(CloseCode.conflict, 'replaced by a newer publisher connection')
        }
        if (message.epoch > session.stream.epoch) this.#restart(session, origin, message.epoch, frame.seq + 1)
        break
      case 'sync-request':
        if (session.publisher !== undefined && session.stream.origin === this.#backplane.nodeId) this.#queueStreamState(session)
        break
    }
  }

  /** Only the "publisher" signal is part of the stream's sequence; other signals carry seq 0. */
  #sendControl (sessionId: string, session: LocalSession | undefined, message: ControlMessage): void {
    const seq = message.type === 'publisher' && session !== undefined ? session.seq++ : 0
    this.#backplane.publish(sessionId, controlFrame(message, seq))
  }

  /** The session was finished (DELETE): close its sockets here and on every node. */
  finishSession (sessionId: string): void {
    this.#rememberFinished(sessionId)
    this.#pruneFinished()
    const session = this.#sessions.get(sessionId)
    this.#sendControl(sessionId, session, { type: 'finished' })
    if (session !== undefined) this.#closeLocal(sessionId, session, CloseCode.finished, 'session finished')
  }

  #closeLocal (sessionId: string, session: LocalSession, code: number, reason: string): void {
    if (code === CloseCode.finished) this.#rememberFinished(sessionId)
    session.publisher?.socket.close(code, reason)
    for (const sink of session.operators) sink.socket.close(code, reason)
  }

  /** Re-inserted, not updated: the map stays in time order for pruning. */
  #rememberFinished (sessionId: string): void {
    this.#finished.delete(sessionId)
    this.#finished.set(sessionId, Date.now())
  }

  #pruneFinished (): void {
    const now = Date.now()
    for (const [id, at] of this.#finished) {
      if (now - at < FINISHED_MEMORY_MS) break
      this.#finished.delete(id)
    }
  }

  /** Local sockets of a session, for tests and metrics. */
  counts (sessionId: string): { publisher: boolean, operators: number } {
    const session = this.#sessions.get(sessionId)
    return { publisher: session?.publisher !== undefined, operators: session?.operators.size ?? 0 }
  }

  get sessionCount (): number {
    return this.#sessions.size
  }
}
