import type { CacheBudget, Evictable } from './cache-budget.js'
import { HeldBytes } from './held-bytes.js'
import type { ScannerOptions } from './scan-limits.js'
import type { ScanEvent } from './scan-event.js'
import type { ContainerScanner } from './scanner.js'
import { createScanner, sniffContainer, type Sniffed } from './sniff.js'

export interface GopCacheOptions extends ScannerOptions {
  /**
   * Most memory held for the media (see `retainedBytes`; the init segment not
   * counted). A group of pictures that grows beyond it (a stream without
   * keyframes) is dropped until the next keyframe segment. Default 8 MB.
   */
  maxBytes?: number
  /** The relay-wide budget this cache's bytes count against (none: only `maxBytes` bounds it). */
  budget?: CacheBudget
}

/** 8 MB: several seconds of a camera at a few Mbit/s. */
export const GOP_CACHE_MAX_BYTES = 8 * 1024 * 1024

/** Longest prefix `sniffContainer` needs to decide. */
const SNIFF_BYTES = 8

/** A Cluster (WebM) or `moof` (MP4) found at stream offset `offset`. */
export interface SegmentStart { offset: number, keyframe: boolean }

/**
 * What a late joiner needs before the live messages (SPEC §5, "Late
 * joiners"): the init segment and the media from the start of the most recent
 * keyframe segment (WebM Cluster, MP4 `moof`) up to the last pushed message.
 *
 * Fed every publisher message in order. It sniffs the container from the
 * first bytes, runs the matching scanner and keeps the recent bytes: a
 * scanner reports a segment only once it has read the segment's first video
 * frame, so the bytes since the current group's start (or, with no group, the
 * last `maxBytes`) are always held, and a keyframe segment found late can
 * still be cut at its first byte.
 *
 * Memory (SPEC §10): `retainedBytes` — large messages held by reference,
 * small ones copied into shared chunks (HeldBytes), so many tiny messages cost
 * what they weigh — never exceeds `maxBytes`, plus the init segment (at most
 * `maxInitBytes`) and the scanner's 64-byte carry buffer. With a `budget`, the
 * relay may also evict the cache whole (`evict`): late joiners then wait for
 * the next keyframe group, as they do before the first one.
 *
 * The caller must not modify a buffer after pushing it.
 */
export class GopCache implements Evictable {
  readonly #maxBytes: number
  readonly #scannerOptions: ScannerOptions
  readonly #budget: CacheBudget | undefined
  #format: Sniffed = 'undecided'
  #scanner: ContainerScanner | undefined
  /** First bytes of the stream while the format is undecided. */
  #head: Buffer = Buffer.alloc(0)
  #init: Buffer | undefined
  readonly #held = new HeldBytes()
  /** Stream offset of the current group's keyframe segment, if it is complete since then. */
  #groupStart: number | undefined
  /** Segments found by the current push. */
  #found: SegmentStart[] = []

  constructor (options: GopCacheOptions = {}) {
    const { maxBytes, budget, ...scannerOptions } = options
    this.#maxBytes = maxBytes ?? GOP_CACHE_MAX_BYTES
    this.#budget = budget
    this.#scannerOptions = scannerOptions
  }

  /** `undecided` until the first bytes tell; `opaque` for good once the stream is not (or no longer) a known container. */
  get format (): Sniffed { return this.#format }

  /** The exact init segment, once complete. */
  get init (): Buffer | undefined { return this.#init }

  /** Memory held for the publisher's media: buffers kept, a shared chunk's unused tail included (the init segment not counted). */
  get retainedBytes (): number { return this.#held.retainedBytes }

  /** Buffers held; at most `2 * retainedBytes / 4608 + 1` (HeldBytes). */
  get heldBuffers (): number { return this.#held.buffers }

  /** Stream offset after the last pushed byte. */
  get end (): number { return this.#held.end }

  /** Stream offset of the keyframe segment the snapshot starts with, if any. */
  get groupOffset (): number | undefined { return this.#format === 'opaque' || this.#init === undefined ? undefined : this.#groupStart }

  /**
   * Feeds the publisher's next message (a text message makes the stream
   * opaque). Returns the segments the scanner found with it, in stream order
   * (a keyframe segment's bytes are then the snapshot's group).
   */
  push (message: Buffer, binary: boolean): SegmentStart[] {
    const found: SegmentStart[] = []
    if (this.#format === 'opaque') return found
    if (!binary) {
      this.markOpaque()
      return found
    }
    if (message.length === 0) return found
    this.#found = found
    try {
      this.#push(message)
    } finally {
      this.#found = []
      this.#budget?.hold(this, this.#held.retainedBytes)
    }
    return found
  }

  #push (message: Buffer): void {
    this.#held.append(message)

    if (this.#format === 'undecided') {
      if (this.#head.length < SNIFF_BYTES) {
        this.#head = Buffer.concat([this.#head, message.subarray(0, SNIFF_BYTES - this.#head.length)])
      }
      const format = sniffContainer(this.#head)
      if (format === 'opaque') return this.markOpaque()
      if (format === 'undecided') return this.#trim()
      this.#format = format
      this.#head = Buffer.alloc(0)
      this.#scanner = createScanner(format, this.#scannerOptions)
      // The scanner reads the stream from its first byte: the sniffed messages are all held (a few bytes decide).
      if (this.#held.start !== 0) return this.markOpaque()
      for (const part of this.#held.parts(0)) {
        if (!this.#handle(this.#scanner.push(part))) return
      }
    } else if (!this.#handle(this.#scanner!.push(message))) {
      return
    }
    this.#trim()
  }

  /**
   * What a late joiner gets before the next live message: `[init, ...group]`,
   * the group starting exactly at a keyframe segment's first byte and ending
   * at the last pushed byte. `null` when the stream is opaque or no complete
   * keyframe group is held (the joiner then gets live messages only).
   */
  snapshot (): Buffer[] | null {
    const start = this.groupOffset
    if (start === undefined) return null
    return [this.#init!, ...this.#held.parts(start)]
  }

  /**
   * The whole stream so far when it is still held from its first byte (a
   * stream that has not reached its first keyframe group yet), else null.
   * Pushed into a fresh cache, these bytes reproduce this cache's state.
   */
  history (): Buffer[] | null {
    if (this.#format === 'opaque') return null
    if (this.#held.end === 0) return []
    return this.#held.start === 0 ? this.#held.parts(0) : null
  }

  /** Starts over for a new stream (publisher reconnect or replacement). */
  reset (): void {
    this.#format = 'undecided'
    this.#scanner = undefined
    this.#head = Buffer.alloc(0)
    this.#init = undefined
    this.#groupStart = undefined
    this.#held.restart()
    this.#budget?.hold(this, 0)
  }

  /** Called by the budget: drops the bytes held (the stream goes on; the next keyframe group is kept again). */
  evict (): void {
    this.#held.clear()
    this.#groupStart = undefined
  }

  /** Applies the scanner's events; false once the stream became opaque. */
  #handle (events: ScanEvent[]): boolean {
    for (const event of events) {
      if (event.type === 'init') {
        this.#init = event.bytes
      } else if (event.type === 'opaque') {
        this.markOpaque()
        return false
      } else if (!event.keyframe) {
        this.#found.push({ offset: event.offset, keyframe: false })
      } else {
        const first = this.#held.start
        // The segment's first bytes were dropped (its first video frame came more than `maxBytes` later): no group.
        this.#groupStart = first !== undefined && first <= event.offset ? event.offset : undefined
        this.#held.dropBefore(event.offset)
        this.#found.push({ offset: event.offset, keyframe: this.#groupStart !== undefined })
      }
    }
    return true
  }

  /** Keeps memory bounded: a group beyond `maxBytes` is dropped; without a group, the last `maxBytes` at most stay. */
  #trim (): void {
    if (this.#held.retainedBytes <= this.#maxBytes) return
    this.#groupStart = undefined
    this.#held.trimTo(this.#maxBytes)
  }

  /** Relays the rest of this stream as opaque messages: nothing is kept. */
  markOpaque (): void {
    this.#format = 'opaque'
    this.#scanner = undefined
    this.#head = Buffer.alloc(0)
    this.#init = undefined
    this.#groupStart = undefined
    this.#held.clear()
    this.#budget?.hold(this, 0)
  }
}
