import type WebSocket from 'ws'
import type { Backplane, Logger, Unsubscribe } from '@streaming-service/core'
import { CloseCode, CloseReason } from '@streaming-service/protocol'
import { LocalSession, type Publisher } from './local-session.js'
import type { LatencyRecorder } from './latency-histogram.js'
import type { GopCacheOptions } from './media/index.js'
import type { RelayMetrics, Traffic } from './metrics.js'
import type { OperatorSink } from './operator-sink.js'
import { Replica, type ReplicationContext } from './replication.js'
import { announceFinished, announceRevoked } from './wire.js'

/** How long a finished session id is remembered, to refuse sockets admitted just before the end. */
const FINISHED_MEMORY_MS = 10 * 60_000

interface Entry { session: LocalSession, replica: Replica, unsubscribe: Unsubscribe }

export interface HubOptions {
  backplane: Backplane
  metrics: RelayMetrics
  logger: Logger
  cache?: GopCacheOptions
}

/**
 * Who watches what on this node. A session is here while any of its sockets
 * is: the first subscribes the node to the session's backplane channel, the
 * last unsubscribes. A local publisher's message goes to the local operators
 * at once and once to the other nodes (replication.ts); their frames come
 * back through the channel to the same local delivery (local-session.ts).
 */
export class Hub {
  readonly #sessions = new Map<string, Entry>()
  /** Finished session ids → when, in time order (re-inserted on update) for pruning. */
  readonly #finished = new Map<string, number>()
  readonly #backplane: Backplane
  readonly #metrics: RelayMetrics
  readonly #cache: GopCacheOptions
  readonly #replication: ReplicationContext
  readonly #traffic: Traffic
  // Bound once: it runs per message.
  readonly #localLatency: LatencyRecorder

  constructor (options: HubOptions) {
    const { backplane, metrics } = options
    this.#backplane = backplane
    this.#metrics = metrics
    this.#cache = options.cache ?? {}
    this.#replication = {
      backplane,
      log: options.logger,
      remoteLatency: metrics.latency.recorder('remote'),
      streamSyncs: metrics.streamSyncs,
      framesLost: (count) => metrics.dropped.inc({ reason: 'backplane_gap' }, count),
      onFinished: (sessionId) => this.#closeFinished(sessionId),
      onRevoked: (sessionId, userId) => this.#closeRevoked(sessionId, userId),
    }
    metrics.cacheBytes.source = () => {
      let bytes = 0
      for (const { session } of this.#sessions.values()) bytes += session.stream.retainedBytes
      return bytes
    }
    this.#traffic = metrics.traffic
    this.#localLatency = metrics.latency.recorder('local')
  }

  /** Makes `socket` the session's publisher on this node with the epoch its admission took. Returns its detach. */
  attachPublisher (sessionId: string, epoch: number, socket: WebSocket): () => void {
    const entry = this.#enter(sessionId)
    const publisher: Publisher = { socket, epoch }
    entry.replica.publisherAttached(epoch, entry.session.takePublisher(publisher))
    return () => {
      entry.session.releasePublisher(publisher)
      this.#leave(sessionId, entry)
    }
  }

  attachOperator (sessionId: string, sink: OperatorSink): () => void {
    const entry = this.#enter(sessionId)
    entry.session.addOperator(sink)
    entry.replica.follow()
    return () => {
      entry.session.operators.delete(sink)
      this.#leave(sessionId, entry)
    }
  }

  /** A message from the local publisher: local operators first, then the other nodes. */
  publish (sessionId: string, payload: Buffer, binary: boolean): void {
    const entry = this.#sessions.get(sessionId)
    if (entry === undefined) return
    const sentAt = Date.now()
    this.#traffic.messagesIn++
    this.#traffic.bytesIn += payload.length
    entry.session.deliver(payload, binary)
    this.#localLatency.observe((Date.now() - sentAt) / 1000)
    entry.replica.forward(payload, binary, sentAt)
  }

  /** False while the backplane is saturated: pause the publisher until `whenWritable()`. */
  get writable (): boolean { return this.#backplane.writable }

  async whenWritable (): Promise<void> { await this.#backplane.whenWritable() }

  /** The session was finished (DELETE): close its sockets here and on every node. */
  finishSession (sessionId: string): void {
    announceFinished(this.#backplane, sessionId)
    this.#closeFinished(sessionId)
  }

  /** Operator `userId` was revoked: close its sockets here and on every node (forbidden). */
  revokeOperator (sessionId: string, userId: string): void {
    announceRevoked(this.#backplane, sessionId, userId)
    this.#closeRevoked(sessionId, userId)
  }

  /** Whether this node saw the session finish (it refuses new sockets of it). */
  isFinished (sessionId: string): boolean {
    const at = this.#finished.get(sessionId)
    return at !== undefined && Date.now() - at < FINISHED_MEMORY_MS
  }

  /** Local sockets of a session, for tests and metrics. */
  counts (sessionId: string): { publisher: boolean, operators: number } {
    const session = this.#sessions.get(sessionId)?.session
    return { publisher: session?.publisher !== undefined, operators: session?.operators.size ?? 0 }
  }

  get sessionCount (): number { return this.#sessions.size }

  #enter (sessionId: string): Entry {
    let entry = this.#sessions.get(sessionId)
    if (entry === undefined) {
      const session = new LocalSession(sessionId, this.#cache, this.#metrics)
      const replica = new Replica(session, this.#replication)
      const unsubscribe = this.#backplane.subscribe(sessionId, (frame, origin) => replica.onFrame(frame, origin))
      entry = { session, replica, unsubscribe }
      this.#sessions.set(sessionId, entry)
    }
    return entry
  }

  #leave (sessionId: string, entry: Entry): void {
    if (!entry.session.idle || this.#sessions.get(sessionId) !== entry) return
    this.#sessions.delete(sessionId)
    entry.session.stream.release()
    entry.unsubscribe()
    entry.replica.close()
  }

  #closeFinished (sessionId: string): void {
    this.#finished.delete(sessionId)
    this.#finished.set(sessionId, Date.now())
    this.#pruneFinished()
    this.#sessions.get(sessionId)?.session.close(CloseCode.finished, CloseReason.finished)
  }

  #closeRevoked (sessionId: string, userId: string): void {
    this.#sessions.get(sessionId)?.session.closeOperator(userId, CloseCode.forbidden, CloseReason.revoked)
  }

  #pruneFinished (): void {
    const now = Date.now()
    for (const [id, at] of this.#finished) {
      if (now - at < FINISHED_MEMORY_MS) break
      this.#finished.delete(id)
    }
  }
}
