import { performance } from 'node:perf_hooks'

/**
 * How much container structure a scanner reads before it stops following a
 * stream (SPEC §10: work per message on media bytes is bounded). A "read" is
 * one element/box header or one block/`tfhd`/`trun` prefix; the bytes of
 * bodies in between are skipped without being looked at, so a scanner's work
 * on a message is at most `readsPerMessage` reads plus a copy of the init
 * segment's bytes, whatever the message's size. Past a limit the stream is
 * relayed as opaque (see ContainerScanner).
 *
 * Measured on real streams (`pnpm bench:media`, 10 s each): the most reads in
 * a 64 KB message is 1122 (fMP4 with a fragment per frame at 60 fps; WebM:
 * 116), in a 200 ms MediaRecorder-like message 266; per second of stream at
 * most 749 reads and 107 segments; the most segments in a 64 KB message 160.
 * `readsPerMessage` is five seconds of that densest stream in one message.
 *
 * Cost of a read on this kind of machine: ~50 ns once V8 has optimized the
 * walker, 2–5 µs before (a fresh process, or code V8 deoptimized), so one
 * message costs at most ~0.2 ms warm and ~20 ms cold, and a stream at most
 * ~7 ms of CPU per second once warm.
 */
export interface ScanLimits {
  /** Reads in one message: 3.6× the densest 64 KB message measured, 15× the densest 200 ms one. */
  readsPerMessage: number
  /** Reads per second and stream (a token bucket holding one second's worth): 175× the densest stream measured. */
  readsPerSecond: number
  /** Segments (Clusters, `moof`s) found in one message: 6.4× the densest 64 KB message measured, 27× the densest 200 ms one. */
  segmentsPerMessage: number
  /** Segments per second and stream: 76× the densest stream measured. */
  segmentsPerSecond: number
}

export const SCAN_LIMITS: Readonly<ScanLimits> = Object.freeze({
  readsPerMessage: 4096,
  readsPerSecond: 131_072,
  segmentsPerMessage: 1024,
  segmentsPerSecond: 8192,
})

/** 1 MB: browsers' init segments are ~150 bytes, ffmpeg's ~1 KB. */
export const MAX_INIT_BYTES = 1024 * 1024

/** What bounds a scanner (ContainerScanner). */
export interface ScannerOptions {
  /** Largest init segment kept (bytes); a larger one makes the stream opaque. */
  maxInitBytes?: number
  /** Overrides of SCAN_LIMITS. */
  limits?: Partial<ScanLimits>
  /** The clock of the per-second limits (milliseconds). */
  clock?: Clock
}

/** Milliseconds from an arbitrary origin (performance.now by default; tests pass their own clock). */
export type Clock = () => number

/** A token bucket holding at most one second's worth of `perSecond`, full at the start. */
class RateBucket {
  readonly #perSecond: number
  #tokens: number
  #at: number

  constructor (perSecond: number, now: number) {
    this.#perSecond = perSecond
    this.#tokens = perSecond
    this.#at = now
  }

  available (now: number): number {
    this.#tokens = Math.min(this.#perSecond, this.#tokens + (now - this.#at) * this.#perSecond / 1000)
    this.#at = now
    return Math.floor(this.#tokens)
  }

  spend (count: number): void {
    this.#tokens -= count
  }
}

/**
 * One stream's allowance, per message and per second, for reads and for
 * segments: `startMessage` grants what the next message may use,
 * `endMessage` charges what it used.
 */
export class ScanAllowance {
  readonly #limits: Readonly<ScanLimits>
  readonly #clock: Clock
  readonly #readBucket: RateBucket
  readonly #segmentBucket: RateBucket
  #reads = 0
  #segments = 0

  constructor (limits: Partial<ScanLimits> = {}, clock: Clock = () => performance.now()) {
    this.#limits = { ...SCAN_LIMITS, ...limits }
    this.#clock = clock
    const now = clock()
    this.#readBucket = new RateBucket(this.#limits.readsPerSecond, now)
    this.#segmentBucket = new RateBucket(this.#limits.segmentsPerSecond, now)
  }

  /** Reads granted to the current message. */
  get reads (): number { return this.#reads }
  /** Segments granted to the current message. */
  get segments (): number { return this.#segments }

  startMessage (): void {
    const now = this.#clock()
    this.#reads = Math.min(this.#limits.readsPerMessage, this.#readBucket.available(now))
    this.#segments = Math.min(this.#limits.segmentsPerMessage, this.#segmentBucket.available(now))
  }

  endMessage (readsUsed: number, segmentsUsed: number): void {
    this.#readBucket.spend(readsUsed)
    this.#segmentBucket.spend(segmentsUsed)
  }

  /** Why the current message may not read more (its grant is spent). */
  readsRefused (): string {
    return this.#reads === this.#limits.readsPerMessage
      ? `more than ${this.#limits.readsPerMessage} container headers in one message`
      : `more than ${this.#limits.readsPerSecond} container headers per second`
  }

  /** Why the current message may not produce more segments. */
  segmentsRefused (): string {
    return this.#segments === this.#limits.segmentsPerMessage
      ? `more than ${this.#limits.segmentsPerMessage} segments in one message`
      : `more than ${this.#limits.segmentsPerSecond} segments per second`
  }
}
