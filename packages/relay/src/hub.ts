import type WebSocket from 'ws'
import { controlFrame, parseControl, type Backplane, type ControlMessage, type Frame, type Logger, type Unsubscribe } from '@streaming-service/core'
import { CloseCode } from './close-codes.js'
import type { Counter, Histogram } from 'prom-client'
import type { RelayMetrics } from './metrics.js'
import type { OperatorSink } from './operator-sink.js'

interface Publisher { socket: WebSocket, epoch: number }

interface LocalSession {
  publisher: Publisher | undefined
  operators: Set<OperatorSink>
  unsubscribe: Unsubscribe
  /** Sequence number of this node's publications on the session. */
  seq: number
}

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

  constructor (options: { backplane: Backplane, metrics: RelayMetrics, logger: Logger }) {
    this.#backplane = options.backplane
    this.#log = options.logger
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
      const unsubscribe = this.#backplane.subscribe(sessionId, (frame) => this.#onRemoteFrame(sessionId, frame))
      session = { publisher: undefined, operators: new Set(), unsubscribe, seq: 0 }
      this.#sessions.set(sessionId, session)
    }
    return session
  }

  #release (sessionId: string, session: LocalSession): void {
    if (session.publisher === undefined && session.operators.size === 0 && this.#sessions.get(sessionId) === session) {
      this.#sessions.delete(sessionId)
      session.unsubscribe()
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
    return () => {
      if (session.publisher === publisher) session.publisher = undefined
      this.#release(sessionId, session)
    }
  }

  attachOperator (sessionId: string, sink: OperatorSink): () => void {
    const session = this.#session(sessionId)
    session.operators.add(sink)
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

  #deliver (session: LocalSession, payload: Buffer, binary: boolean): void {
    for (const sink of session.operators) sink.send(payload, binary)
  }

  #onRemoteFrame (sessionId: string, frame: Frame): void {
    const session = this.#sessions.get(sessionId)
    if (session === undefined) return
    if (frame.kind === 'control') {
      this.#onControl(sessionId, session, frame)
      return
    }
    this.#deliver(session, frame.payload, frame.kind === 'media-binary')
    if (frame.sentAt !== undefined) this.#remoteLatency.observe(Math.max(0, Date.now() - frame.sentAt) / 1000)
  }

  #onControl (sessionId: string, session: LocalSession, frame: Frame): void {
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
        break
    }
  }

  #sendControl (sessionId: string, session: LocalSession | undefined, message: ControlMessage): void {
    this.#backplane.publish(sessionId, controlFrame(message, session === undefined ? 0 : session.seq++))
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
