import { GopCache, type GopCacheOptions, type SegmentStart, type Sniffed } from './media/index.js'
import type { StreamView } from './operator-sink.js'
import type { StreamState } from './stream-state.js'

/**
 * After this many media frames in a row from a node other than the stream's
 * origin, that node is taken to be the publisher now (its "publisher" signal
 * was lost); fewer are the tail of a replaced publisher and are ignored.
 */
const FOREIGN_FRAMES_LIMIT = 25

/** A message that is a view into a much larger buffer (a socket read) is copied before it is kept. */
function retainable (payload: Buffer): Buffer {
  return payload.buffer.byteLength > 2 * payload.length + 4096 ? Buffer.from(payload) : payload
}

/** What a frame from the backplane is to the stream: the next part of it, not part of it, or proof that frames were lost. */
export type FrameFit = 'follow' | 'ignore' | 'lost'

/**
 * One session's publisher stream as this node sees it: the late-join cache
 * and where the node is in the publisher's sequence.
 *
 * A node is **synced** when it knows every byte of the current stream since a
 * point the cache can start from: the node of the publisher always is; another
 * node becomes synced when it sees the stream start (the "publisher" signal)
 * or when it receives a `stream-state` frame, and stops being synced when a
 * gap in the origin's sequence shows frames were lost.
 */
export class SessionStream implements StreamView {
  readonly #cacheOptions: GopCacheOptions
  #cache: GopCache
  #synced = false
  #origin: string | undefined
  #epoch = -1
  /** Next sequence number expected from the origin, for streams that arrive through the backplane. */
  #nextSeq: number | undefined
  #foreignFrames = 0

  constructor (cacheOptions: GopCacheOptions = {}) {
    this.#cacheOptions = cacheOptions
    this.#cache = new GopCache(cacheOptions)
  }

  get synced (): boolean { return this.#synced }
  get format (): Sniffed { return this.#cache.format }
  get media (): boolean { return this.#cache.format === 'webm' || this.#cache.format === 'mp4' }
  get end (): number { return this.#cache.end }
  get groupOffset (): number | undefined { return this.#cache.groupOffset }
  /** Node id of the node whose publisher feeds the stream. */
  get origin (): string | undefined { return this.#origin }
  get epoch (): number { return this.#epoch }
  /** Memory the cache holds (init segment not counted). */
  get retainedBytes (): number { return this.#cache.retainedBytes }

  snapshot (): Buffer[] | null { return this.#cache.snapshot() }

  /** A new stream begins with the next message of `origin` (`nextSeq`: its sequence number, for remote origins). */
  restart (origin: string, epoch: number, nextSeq?: number): void {
    this.#cache.reset()
    this.#synced = true
    this.#origin = origin
    this.#epoch = epoch
    this.#nextSeq = nextSeq
    this.#foreignFrames = 0
  }

  /** Frames were lost: what the cache holds no longer lines up with the stream. */
  unsync (): void {
    this.#cache.reset()
    this.#synced = false
    this.#nextSeq = undefined
  }

  /** Appends the publisher's next message; returns the segments found in it. */
  push (payload: Buffer, binary: boolean): SegmentStart[] {
    return this.#cache.push(this.#cache.format === 'opaque' ? payload : retainable(payload), binary)
  }

  /** Whether a media or stream-state frame from the backplane continues this stream. */
  fit (origin: string, seq: number): FrameFit {
    if (!this.#synced) return 'ignore'
    if (origin !== this.#origin) {
      if (++this.#foreignFrames <= FOREIGN_FRAMES_LIMIT) return 'ignore'
      this.#origin = origin
      this.#nextSeq = seq + 1
      return 'lost'
    }
    this.#foreignFrames = 0
    const expected = this.#nextSeq
    this.#nextSeq = seq + 1
    return expected === undefined || seq === expected ? 'follow' : 'lost'
  }

  /** What another node needs to follow this stream from now on, or null when it cannot be given yet. */
  state (): StreamState | null {
    if (this.#cache.format === 'opaque') return { epoch: this.#epoch, opaque: true, parts: [] }
    const parts = this.#cache.snapshot() ?? this.#cache.history()
    return parts === null ? null : { epoch: this.#epoch, opaque: false, parts }
  }

  /** The session left this node: what the cache holds stops counting against the relay's cache budget. */
  release (): void {
    this.#cache.reset()
  }

  /** Takes over another node's state, sent as the frame with sequence number `seq`. */
  seed (state: StreamState, origin: string, seq: number): void {
    this.#cache.reset()
    this.#cache = new GopCache(this.#cacheOptions)
    if (state.opaque) this.#cache.markOpaque()
    for (const part of state.parts) this.#cache.push(part, true)
    this.#synced = true
    this.#origin = origin
    this.#epoch = state.epoch
    this.#nextSeq = seq + 1
    this.#foreignFrames = 0
  }
}
