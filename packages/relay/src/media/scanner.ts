/**
 * What an incremental container scanner reports while the publisher's bytes
 * flow through it. Offsets count bytes from the first byte of the stream, so a
 * caller that keeps the stream's recent bytes can cut "init segment + bytes
 * from the last keyframe segment's offset" at a container boundary.
 *
 * - `init`: the exact initialization segment (WebM: EBML header, Segment
 *   header and everything before the first Cluster; MP4: `ftyp`, `moov` and
 *   the boxes before the first fragment). Emitted once.
 * - `segment`: a Cluster (WebM) or `moof` (MP4) starts at `offset`; `keyframe`
 *   tells whether its first video frame is a keyframe. Emitted once the
 *   scanner knows (after the first video block, or at the segment's end).
 * - `opaque`: the input is not what the scanner understands (malformed, too
 *   large an init segment, an unsupported layout). The scanner stops; the
 *   stream must be relayed as opaque bytes from now on. `offset` is the byte
 *   at which the scanner noticed (e.g. the last byte of a bad header).
 */
export type ScanEvent =
  | { type: 'init', bytes: Buffer }
  | { type: 'segment', offset: number, keyframe: boolean }
  | { type: 'opaque', offset: number, reason: string }

/** `init`: before the init segment ended; `media`: after; `opaque`: gave up, for good. */
export type ScannerState = 'init' | 'media' | 'opaque'

export interface ScannerOptions {
  /** Largest init segment kept (bytes); a larger one makes the stream opaque. */
  maxInitBytes?: number
}

/** 1 MB: browsers' init segments are ~150 bytes, ffmpeg's ~1 KB. */
export const MAX_INIT_BYTES = 1024 * 1024

/**
 * The part every scanner shares: the stream position, the state, the init
 * segment's bytes until it is complete, and the rule that a scanner never
 * throws (anything unexpected makes the stream opaque).
 *
 * Memory: a subclass keeps a small fixed header buffer; this class keeps
 * copies of the init segment's bytes, at most `maxInitBytes`. Media bytes are
 * never retained.
 */
export abstract class ContainerScanner {
  abstract readonly format: 'webm' | 'mp4'

  #state: ScannerState = 'init'
  #position = 0
  #events: ScanEvent[] = []
  #initParts: Buffer[] = []
  #initLength = 0
  readonly #maxInitBytes: number

  constructor (options: ScannerOptions = {}) {
    this.#maxInitBytes = options.maxInitBytes ?? MAX_INIT_BYTES
  }

  get state (): ScannerState { return this.#state }

  /** Bytes of the stream pushed so far. */
  get offset (): number { return this.#position }

  /** Bytes this scanner holds on to (init segment so far + partial header). */
  get retainedBytes (): number { return this.#initLength + this.partialBytes() }

  /** Feeds the next bytes of the stream, of any size; returns what they completed. */
  push (chunk: Buffer): ScanEvent[] {
    const events: ScanEvent[] = []
    this.#events = events
    let index = 0
    try {
      while (index < chunk.length && this.#state !== 'opaque') {
        const used = this.step(chunk, index)
        index += used
        this.#position += used
      }
    } catch (err) {
      // A scanner bug must not take the relay down: the stream stays relayable as opaque bytes.
      this.giveUp(`scanner failure: ${(err as Error).message}`)
    }
    this.#position += chunk.length - index
    this.#events = []
    return events
  }

  /** Stream offset of the byte `step` is given at `chunk[index]`. */
  protected get position (): number { return this.#position }

  /**
   * Consumes bytes from `chunk[index]` on (at least one unless the scanner
   * gives up) and returns how many.
   */
  protected abstract step (chunk: Buffer, index: number): number

  /** Bytes of a partly read header or payload prefix. */
  protected abstract partialBytes (): number

  /** Records bytes that belong to the init segment, while it is being collected. */
  protected collect (bytes: Buffer): void {
    if (this.#state !== 'init' || bytes.length === 0) return
    this.#initLength += bytes.length
    if (this.#initLength > this.#maxInitBytes) {
      this.giveUp(`init segment larger than ${this.#maxInitBytes} bytes`)
      return
    }
    this.#initParts.push(Buffer.from(bytes))
  }

  /** Ends the init segment: emits the bytes collected and returns them. */
  protected completeInit (): Buffer {
    const bytes = Buffer.concat(this.#initParts, this.#initLength)
    this.#initParts = []
    this.#initLength = 0
    this.#state = 'media'
    this.#events.push({ type: 'init', bytes })
    return bytes
  }

  protected emitSegment (offset: number, keyframe: boolean): void {
    this.#events.push({ type: 'segment', offset, keyframe })
  }

  protected giveUp (reason: string): void {
    if (this.#state === 'opaque') return
    this.#state = 'opaque'
    this.#initParts = []
    this.#initLength = 0
    this.#events.push({ type: 'opaque', offset: this.#position, reason })
  }
}
