import type WebSocket from 'ws'
import { CloseCode, CloseReason } from '@streaming-service/protocol'
import { OutgoingMessage } from './frames.js'
import type { GopCacheOptions } from './media/index.js'
import type { RelayMetrics } from './metrics.js'
import type { OperatorSink } from './operator-sink.js'
import { SessionStream } from './stream.js'

export interface Publisher { socket: WebSocket, epoch: number }

/**
 * One session as this node sees it: its publisher connection (when it is on
 * this node), its operators here, and their stream. Every message of the
 * stream, from the local publisher or from another node, passes through
 * `deliver` once: into the late-join cache, then the same buffer to every
 * operator.
 */
export class LocalSession {
  readonly id: string
  readonly stream: SessionStream
  readonly operators = new Set<OperatorSink>()
  #publisher: Publisher | undefined
  readonly #metrics: RelayMetrics

  constructor (id: string, cache: GopCacheOptions, metrics: RelayMetrics) {
    this.id = id
    this.stream = new SessionStream(cache)
    this.#metrics = metrics
  }

  get publisher (): Publisher | undefined { return this.#publisher }

  /** No socket of the session is left on this node. */
  get idle (): boolean { return this.#publisher === undefined && this.operators.size === 0 }

  /** The stream's next message: into the cache, to every operator, then the segments it completed. */
  deliver (payload: Buffer, binary: boolean): void {
    const stream = this.stream
    const offset = stream.end
    const segments = stream.push(payload, binary)
    const message = new OutgoingMessage(payload, binary, this.operators.size)
    for (const sink of this.operators) sink.send(message, offset, stream)
    for (const segment of segments) {
      for (const sink of this.operators) sink.segment(segment, stream)
    }
  }

  addOperator (sink: OperatorSink): void {
    this.operators.add(sink)
    this.#start(sink)
  }

  /** Starts every operator again where the stream now is (after the node took over a stream state). */
  restartOperators (): void {
    for (const sink of this.operators) this.#start(sink)
  }

  #start (sink: OperatorSink): void {
    this.#metrics.operatorStarts.inc({ start: sink.start(this.stream) })
  }

  /** The newer epoch is the publisher, whichever connection came first; the older is closed. Returns whether `publisher` won. */
  takePublisher (publisher: Publisher): boolean {
    const previous = this.#publisher
    const won = previous === undefined || previous.epoch < publisher.epoch
    const loser = won ? previous : publisher
    if (won) this.#publisher = publisher
    loser?.socket.close(CloseCode.conflict, CloseReason.replaced)
    return won
  }

  releasePublisher (publisher: Publisher): void {
    if (this.#publisher === publisher) this.#publisher = undefined
  }

  /** A publisher with `epoch` was admitted on another node: an older local one is replaced. */
  publisherElsewhere (epoch: number): void {
    if (this.#publisher !== undefined && this.#publisher.epoch < epoch) this.#publisher.socket.close(CloseCode.conflict, CloseReason.replaced)
  }

  /** A new stream begins: operators with bytes of an old WebM/MP4 stream need a new player. */
  restartStream (): void {
    const wasMedia = this.stream.media
    this.stream.restart()
    for (const sink of this.operators) {
      if (wasMedia && sink.gotBytes) sink.socket.close(CloseCode.streamRestarted, CloseReason.streamRestarted)
      else sink.restart()
    }
  }

  /** Frames of a WebM/MP4 stream were lost: it no longer decodes for operators that got bytes of it. */
  interruptStream (): void {
    this.stream.unsync()
    for (const sink of this.operators) {
      if (sink.gotBytes) sink.socket.close(CloseCode.streamRestarted, CloseReason.streamInterrupted)
      else sink.start(this.stream)
    }
  }

  /** Closes every socket of operator `userId` here (revoked, SPEC §9). */
  closeOperator (userId: string, code: number, reason: string): void {
    for (const sink of this.operators) if (sink.userId === userId) sink.socket.close(code, reason)
  }

  close (code: number, reason: string): void {
    this.#publisher?.socket.close(code, reason)
    for (const sink of this.operators) sink.socket.close(code, reason)
  }
}
