import { GopCache, type GopCacheOptions, type SegmentStart, type Sniffed } from './media/index.js'
import type { StreamView } from './operator-sink.js'
import type { StreamState } from './wire.js'

/**
 * One session's publisher stream as this node holds it: the late-join cache
 * (init segment + current group of pictures) and whether the node is synced.
 *
 * A node is **synced** when it knows every byte of the current stream since a
 * point the cache can start from: the publisher's node always is; another
 * node becomes synced when it sees the stream start or takes over a
 * `streamState`, and stops being synced when frames were lost on the way.
 */
export class SessionStream implements StreamView {
  readonly #cacheOptions: GopCacheOptions
  #cache: GopCache
  #synced = false

  constructor (cacheOptions: GopCacheOptions = {}) {
    this.#cacheOptions = cacheOptions
    this.#cache = new GopCache(cacheOptions)
  }

  get synced (): boolean { return this.#synced }
  get format (): Sniffed { return this.#cache.format }
  get media (): boolean { return this.#cache.format === 'webm' || this.#cache.format === 'mp4' }
  get end (): number { return this.#cache.end }
  get groupOffset (): number | undefined { return this.#cache.groupOffset }
  /** Memory the cache holds (init segment not counted). */
  get retainedBytes (): number { return this.#cache.retainedBytes }

  snapshot (): Buffer[] | null { return this.#cache.snapshot() }

  /** A new stream begins with the next message; this node follows it from its first byte. */
  restart (): void {
    this.#cache.reset()
    this.#synced = true
  }

  /** Frames were lost: what the cache holds no longer lines up with the stream. */
  unsync (): void {
    this.#cache.reset()
    this.#synced = false
  }

  /** Appends the publisher's next message; returns the segments found in it (the cache copies what it must keep). */
  push (payload: Buffer, binary: boolean): SegmentStart[] {
    return this.#cache.push(payload, binary)
  }

  /** What another node needs to follow this stream (of publisher `epoch`) from now on, or null when it cannot be given yet. */
  state (epoch: number): StreamState | null {
    if (this.#cache.format === 'opaque') return { epoch, opaque: true, parts: [] }
    const parts = this.#cache.snapshot() ?? this.#cache.history()
    return parts === null ? null : { epoch, opaque: false, parts }
  }

  /** The session left this node: what the cache holds stops counting against the relay's cache budget. */
  release (): void {
    this.#cache.reset()
  }

  /** Takes over another node's state: this node follows the stream from the end of it. */
  seed (state: StreamState): void {
    this.#cache.reset()
    this.#cache = new GopCache(this.#cacheOptions)
    if (state.opaque) this.#cache.markOpaque()
    for (const part of state.parts) this.#cache.push(part, true)
    this.#synced = true
  }
}
