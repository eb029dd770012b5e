import { ID, isSegmentLevel, isTopLevel, readVint, UNKNOWN_SIZE, videoTrackNumbers, vintLength } from './ebml.js'
import { OpenElements } from './open-elements.js'
import { ContainerScanner } from './scanner.js'

/** Segment > Cluster > BlockGroup: the only elements the walker enters. */
const MAX_DEPTH = 3
/** No Cluster open, or no Block track read yet. */
const NONE = -1
/** The "parent" of a top-level element (OpenElements.innermost with none open). */
const NO_PARENT = 0

/**
 * Incremental EBML walker for a live WebM stream (what MediaRecorder and
 * `ffmpeg -f webm -live 1` write). It descends into Segment, Cluster and
 * BlockGroup, reads the first few bytes of blocks and skips everything else
 * by its size, so it never searches the bytes for IDs and a payload can never
 * be mistaken for a header.
 *
 * Segment and Cluster may have unknown size (all value bits set, e.g. the
 * 8-byte `01 FF FF FF FF FF FF FF` browsers write, detected from the raw
 * bytes): an unknown-size Cluster ends where the next Segment-level or
 * top-level element starts, an unknown-size Segment where a top-level one does.
 *
 * A Cluster is a keyframe segment when its first video block is a keyframe: a
 * SimpleBlock with the keyframe flag (0x80), or a BlockGroup without
 * ReferenceBlock. Video tracks come from the init segment's Tracks; without
 * them the first block of any track decides.
 *
 * Cost: one read per element header or block prefix, bounded by ScanLimits;
 * the open elements live in fixed typed arrays, nothing is allocated per element.
 */
export class WebmScanner extends ContainerScanner {
  readonly format = 'webm' as const

  readonly #open = new OpenElements(MAX_DEPTH)
  /** Whether the next read is a block's prefix rather than an element header. */
  #blockNext = false
  #blockSize = 0
  #blockGrouped = false
  /** Stream offset of the current Cluster, and whether its first video block was seen. */
  #clusterOffset = NONE
  #clusterDecided = false
  /** The current BlockGroup's Block track (NONE: not read yet) and whether it had a ReferenceBlock. */
  #groupTrack = NONE
  #groupReferenced = false
  #videoTracks = new Set<number>()

  protected override read (buffer: Buffer, start: number, end: number, offset: number): number {
    if (this.#blockNext) return this.#readBlockPrefix(buffer, start, end, offset)
    if (this.#open.innermostEnd <= offset && !this.#open.closeEnded(offset, this.#closed)) return this.fail('element overruns its parent', offset)
    const first = buffer[start]!
    const idLength = vintLength(first)
    if (idLength > 4) return this.fail('invalid element ID', offset)
    if (end - start <= idLength) return 0
    const sizeFirst = buffer[start + idLength]!
    const sizeLength = vintLength(sizeFirst)
    if (sizeLength > 8) return this.fail('invalid element size', offset + idLength)
    const headerLength = idLength + sizeLength
    if (end - start < headerLength) return 0

    let id = first
    for (let i = start + 1; i < start + idLength; i++) id = id * 256 + buffer[i]!
    const mask = 0xff >> sizeLength
    let size = sizeFirst & mask
    let unknown = size === mask
    for (let i = start + idLength + 1; i < start + headerLength; i++) {
      const byte = buffer[i]!
      unknown &&= byte === 0xff
      size = size * 256 + byte
    }
    if (unknown) size = UNKNOWN_SIZE
    else if (size > Number.MAX_SAFE_INTEGER) return this.fail('element size out of range', offset + headerLength - 1)
    return this.#onElement(id, size, offset, headerLength)
  }

  /** Handles a header; returns its length, or 0 when the stream gave up. */
  #onElement (id: number, size: number, start: number, headerLength: number): number {
    const dataStart = start + headerLength
    const last = dataStart - 1
    // An element of unknown size ends where an element of its own level or above starts (all have 4-byte IDs).
    if (id > 0xffffff) this.#closeUnknown(id)
    const parent = this.#open.innermost
    const parentEnd = this.#open.innermostEnd
    if (size === UNKNOWN_SIZE ? dataStart > parentEnd : dataStart + size > parentEnd) {
      return this.fail('element overruns its parent', last)
    }

    switch (parent) {
      case NO_PARENT:
        if (start === 0 && id !== ID.EBML) return this.fail('no EBML header', last)
        if (start !== 0 && id === ID.EBML) return this.fail('a second EBML stream starts', last)
        if (id === ID.Segment) return this.#enter(id, dataStart, size, headerLength)
        break
      case ID.Segment:
        if (id === ID.Cluster) {
          if (this.state === 'init') this.#videoTracks = videoTrackNumbers(this.completeInit(start))
          this.#clusterOffset = start
          this.#clusterDecided = false
          return this.#enter(id, dataStart, size, headerLength)
        }
        break
      case ID.Cluster:
        if (this.#clusterDecided) break
        if (id === ID.SimpleBlock) return this.#startBlock(false, size, headerLength, last)
        if (id === ID.BlockGroup) {
          if (size === UNKNOWN_SIZE) return this.fail('BlockGroup of unknown size', last)
          this.#groupTrack = NONE
          this.#groupReferenced = false
          return this.#enter(id, dataStart, size, headerLength)
        }
        break
      case ID.BlockGroup:
        if (id === ID.Block && this.#groupTrack === NONE) return this.#startBlock(true, size, headerLength, last)
        if (id === ID.ReferenceBlock) this.#groupReferenced = true
        break
    }
    if (size === UNKNOWN_SIZE) return this.fail('element of unknown size that cannot be skipped', last)
    this.skip(size)
    return headerLength
  }

  /** Closes the open elements of unknown size that an element `id` ends. */
  #closeUnknown (id: number): void {
    while (this.#open.depth > 0 && this.#open.innermostEnd === Infinity) {
      if (!isTopLevel(id) && !(this.#open.innermost === ID.Cluster && isSegmentLevel(id))) return
      this.#closed(this.#open.close())
    }
  }

  #enter (id: number, dataStart: number, size: number, headerLength: number): number {
    if (!this.#open.open(id, size === UNKNOWN_SIZE ? Infinity : dataStart + size)) return this.fail('elements nested too deep', dataStart - 1)
    return headerLength
  }

  readonly #closed = (id: number): void => {
    if (id === ID.BlockGroup) {
      if (this.#groupTrack !== NONE && this.#isVideo(this.#groupTrack)) this.#decide(!this.#groupReferenced)
      this.#groupTrack = NONE
    } else if (id === ID.Cluster) {
      // A cluster without a video block cannot start a decodable group.
      this.#decide(false)
      this.#clusterOffset = NONE
    }
  }

  #startBlock (grouped: boolean, size: number, headerLength: number, last: number): number {
    if (size === UNKNOWN_SIZE) return this.fail('block of unknown size', last)
    if (size === 0) return this.fail('empty block', last)
    this.#blockGrouped = grouped
    this.#blockSize = size
    this.#blockNext = true
    return headerLength
  }

  /** Block header: track number (VINT), 16-bit timecode, flags. */
  #readBlockPrefix (buffer: Buffer, start: number, end: number, offset: number): number {
    const trackLength = vintLength(buffer[start]!)
    if (trackLength > 8) return this.fail('invalid block track number', offset)
    const length = trackLength + 3
    if (length > this.#blockSize) return this.fail('block shorter than its header', offset)
    if (end - start < length) return 0
    const track = readVint(buffer, start, trackLength)
    const flags = buffer[start + trackLength + 2]!
    this.#blockNext = false
    if (this.#blockGrouped) {
      this.#groupTrack = track
    } else if (this.#isVideo(track)) {
      this.#decide((flags & 0x80) !== 0)
    }
    this.skip(this.#blockSize - length)
    return length
  }

  #isVideo (track: number): boolean {
    return this.#videoTracks.size === 0 || this.#videoTracks.has(track)
  }

  #decide (keyframe: boolean): void {
    if (this.#clusterOffset === NONE || this.#clusterDecided) return
    this.#clusterDecided = true
    this.emitSegment(this.#clusterOffset, keyframe)
  }
}
