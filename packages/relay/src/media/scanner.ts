import { HeldBytes } from './held-bytes.js'
import { MAX_INIT_BYTES, ScanAllowance, type ScannerOptions } from './scan-limits.js'
import type { OpaqueCause, ScanEvent, ScannerState } from './scan-event.js'

const NO_BYTES = Buffer.alloc(0)

/** Longest read a subclass may ask for: an MP4 `tfhd`/`trun` prefix (48) with room to spare. */
const CARRY_BYTES = 64

/**
 * The part every scanner shares: the read loop, the stream position, the
 * state, the init segment's bytes until it is complete, the limits, and the
 * rule that a scanner never throws (anything unexpected makes the stream
 * opaque).
 *
 * A subclass reads headers straight from the pushed chunk (`read`); only a
 * read that straddles two messages goes through a small carry buffer. Bodies
 * it does not need are skipped by size (`skip`), never looked at. Nothing is
 * allocated per header: the events a message produces are bounded by the
 * segment limits.
 *
 * Past a limit (ScanLimits) the stream becomes opaque rather than the
 * publisher being refused (1008): its messages still reach every operator
 * unchanged (SPEC §5), only late joiners get live messages from then on; a
 * legitimate but unusual publisher (a huge message, a very dense stream) keeps
 * its audience; and an opaque stream costs nothing more to scan, so there is
 * nothing left to defend against. A new publisher connection starts a new
 * stream, and a new allowance, only after a new admission.
 *
 * Memory: the carry buffer (64 bytes) and, until the first segment, the init
 * segment's bytes (at most `maxInitBytes` plus a partial header, coalesced by
 * HeldBytes however small the messages). Media bytes are never retained.
 */
export abstract class ContainerScanner {
  abstract readonly format: 'webm' | 'mp4'

  #state: ScannerState = 'init'
  /** Bytes pushed so far. */
  #pushed = 0
  /** Stream offset of the next byte to read or skip (bytes in the carry buffer are not consumed yet). */
  #cursor = 0
  /** Bytes after the cursor to pass over without reading (Infinity: the rest of the stream). */
  #skip = 0
  readonly #carry = Buffer.alloc(CARRY_BYTES)
  #carried = 0
  /** What the current message may still read, and produce, under the limits. */
  #readsLeft = 0
  #segmentsLeft = 0
  /** Where the current push's events go. */
  #events: ScanEvent[] = []
  /** The stream's first bytes while the init segment is not complete. */
  readonly #init = new HeldBytes()
  /** The chunk being pushed and its stream offset (for the init segment's last bytes). */
  #chunk: Buffer = NO_BYTES
  #chunkOffset = 0
  readonly #maxInitBytes: number
  readonly #allowance: ScanAllowance

  constructor (options: ScannerOptions = {}) {
    this.#maxInitBytes = options.maxInitBytes ?? MAX_INIT_BYTES
    this.#allowance = new ScanAllowance(options.limits, options.clock)
  }

  get state (): ScannerState { return this.#state }

  /** Bytes of the stream pushed so far. */
  get offset (): number { return this.#pushed }

  /** Bytes this scanner holds on to (init segment so far, or a partial header). */
  get retainedBytes (): number { return this.#state === 'init' ? this.#init.end : this.#carried }

  /** Feeds the next bytes of the stream, of any size; returns what they completed. */
  push (chunk: Buffer): ScanEvent[] {
    const events: ScanEvent[] = []
    this.#chunkOffset = this.#pushed
    this.#pushed += chunk.length
    if (this.#state === 'opaque' || chunk.length === 0) return events
    if (this.#state === 'media' && this.#skip >= chunk.length) {
      // All of it inside a body (most messages of a stream of large frames): nothing to read, nothing to count.
      this.#skip -= chunk.length
      this.#cursor += chunk.length
      return events
    }
    this.#events = events
    this.#chunk = chunk
    this.#allowance.startMessage()
    this.#readsLeft = this.#allowance.reads
    this.#segmentsLeft = this.#allowance.segments
    try {
      this.#scan(chunk)
    } catch (err) {
      // A scanner bug must not take the relay down: the stream stays relayable as opaque bytes.
      this.giveUp(`scanner failure: ${(err as Error).message}`, this.#cursor)
    }
    this.#allowance.endMessage(this.#allowance.reads - this.#readsLeft, this.#allowance.segments - this.#segmentsLeft)
    if (this.#state === 'init') this.#collectInit(this.#pushed)
    this.#chunk = NO_BYTES
    return events
  }

  #scan (chunk: Buffer): void {
    const length = chunk.length
    let index = 0
    // (`as`: `read` may give up, which TypeScript's narrowing of the field cannot see.)
    while (index < length && (this.#state as ScannerState) !== 'opaque') {
      if (this.#skip > 0) {
        const used = Math.min(this.#skip, length - index)
        this.#skip -= used
        this.#cursor += used
        index += used
      } else if (this.#carried > 0) {
        index = this.#readCarried(chunk, index)
      } else if (this.#readsLeft > 0) {
        this.#readsLeft--
        const used = this.read(chunk, index, length, this.#cursor)
        if (used > 0) {
          this.#cursor += used
          index += used
          if (this.#state === 'init') this.#checkInitLength()
        } else if (!this.#gaveUp()) {
          if (length - index >= CARRY_BYTES) return this.giveUp('scanner asked for too long a read', this.#cursor)
          this.#carried = chunk.copy(this.#carry, 0, index, length)
          index = length
          // Only complete reads count, so where the limit stops a stream does not depend on how it was split.
          this.#readsLeft++
        }
      } else {
        this.#stop(this.#allowance.readsRefused(), this.#cursor, 'limit')
      }
    }
  }

  /** Continues a read that started in an earlier message, with the carried bytes and the next ones of `chunk`. */
  #readCarried (chunk: Buffer, index: number): number {
    const before = this.#carried
    const taken = chunk.copy(this.#carry, before, index, Math.min(chunk.length, index + CARRY_BYTES - before))
    if (this.#readsLeft === 0) {
      this.#stop(this.#allowance.readsRefused(), this.#cursor, 'limit')
      return chunk.length
    }
    const used = this.read(this.#carry, 0, before + taken, this.#cursor)
    if (used === 0) {
      if (!this.#gaveUp() && before + taken === CARRY_BYTES) this.giveUp('scanner asked for too long a read', this.#cursor)
      this.#carried = before + taken
      return index + taken
    }
    this.#readsLeft--
    this.#cursor += used
    if (this.#state === 'init') this.#checkInitLength()
    if (used >= before) {
      this.#carried = 0
      return index + used - before
    }
    // The read was shorter than what was carried: the rest stays carried.
    this.#carried = before - used
    this.#carry.copy(this.#carry, 0, used, before)
    return index
  }

  /** A method, not a field read: `read` may give up, which TypeScript's narrowing cannot see. */
  #gaveUp (): boolean {
    return this.#state === 'opaque'
  }

  /** Gives up as soon as the element just read would take the init segment past its bound. */
  #checkInitLength (): void {
    if (this.#cursor + this.#skip > this.#maxInitBytes) {
      this.#stop(`init segment larger than ${this.#maxInitBytes} bytes`, this.#cursor - 1, 'limit')
    }
  }

  /**
   * Reads one header (or block/box prefix) at `buffer[start]`, which is the
   * stream's byte at offset `offset`, using bytes up to `end`. Returns how
   * many bytes it consumed, or 0 when they are not all there yet: then it is
   * called again at the same offset with more bytes, so it must not change
   * its state before it returns a length (or gives up; then what it returns
   * does not matter). It never asks for more than 64 bytes.
   */
  protected abstract read (buffer: Buffer, start: number, end: number, offset: number): number

  /** Passes over the next `bytes` after the ones the current read consumes (Infinity: the rest of the stream). */
  protected skip (bytes: number): void {
    this.#skip = bytes
  }

  /** Ends the init segment at stream offset `end` (the first segment's first byte): emits its bytes and returns them. */
  protected completeInit (end: number): Buffer {
    this.#collectInit(end)
    // A buffer of its own, exactly as long: it is kept for the whole stream.
    const bytes = Buffer.allocUnsafeSlow(end)
    let at = 0
    for (const part of this.#init.parts(0)) at += part.copy(bytes, at, 0, Math.min(part.length, end - at))
    this.#init.restart()
    this.#state = 'media'
    this.#events.push({ type: 'init', bytes })
    return bytes
  }

  /** Keeps the pushed chunk's bytes up to stream offset `end`. */
  #collectInit (end: number): void {
    const from = this.#init.end - this.#chunkOffset
    if (end - this.#chunkOffset > from) this.#init.append(this.#chunk.subarray(from, end - this.#chunkOffset))
  }

  protected emitSegment (offset: number, keyframe: boolean): void {
    if (this.#segmentsLeft === 0) return this.#stop(this.#allowance.segmentsRefused(), this.#cursor, 'limit')
    this.#segmentsLeft--
    this.#events.push({ type: 'segment', offset, keyframe })
  }

  /** Stops following a stream it does not understand; `offset` is the byte at which the problem was noticed. */
  protected giveUp (reason: string, offset: number): void {
    this.#stop(reason, offset, 'malformed')
  }

  /** `giveUp`, returning what `read` returns then. */
  protected fail (reason: string, offset: number): 0 {
    this.giveUp(reason, offset)
    return 0
  }

  #stop (reason: string, offset: number, cause: OpaqueCause): void {
    if (this.#state === 'opaque') return
    this.#state = 'opaque'
    this.#init.restart()
    this.#carried = 0
    this.#events.push({ type: 'opaque', offset, reason, cause })
  }
}
