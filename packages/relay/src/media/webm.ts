import { ContainerScanner } from './scanner.js'

/** Element IDs as read from the stream (VINT marker bits kept). */
const ID = {
  EBML: 0x1a45dfa3,
  Segment: 0x18538067,
  Cluster: 0x1f43b675,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  ReferenceBlock: 0xfb,
} as const

const TOP_LEVEL = new Set<number>([ID.EBML, ID.Segment])
/** Children of Segment: one of them ends a Cluster of unknown size. */
const SEGMENT_LEVEL = new Set<number>([
  0x114d9b74, // SeekHead
  0x1549a966, // Info
  ID.Tracks,
  0x1043a770, // Chapters
  ID.Cluster,
  0x1c53bb6b, // Cues
  0x1941a469, // Attachments
  0x1254c367, // Tags
])
const TRACK_TYPE_VIDEO = 1

/** Longest element header: 4-byte ID + 8-byte size. */
const MAX_HEADER = 12

interface Open {
  id: number
  /** Stream offset of the first byte after the element; undefined: unknown size. */
  end: number | undefined
}

/** Length of a VINT from its first byte; 9 when the byte is 0 (invalid). */
function vintLength (first: number): number {
  return Math.clz32(first) - 23
}

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
 */
export class WebmScanner extends ContainerScanner {
  readonly format = 'webm' as const

  readonly #buffer = Buffer.alloc(MAX_HEADER)
  #buffered = 0
  #mode: 'header' | 'prefix' | 'skip' = 'header'
  /** Bytes still to skip in `skip` mode. */
  #skip = 0
  /** Stream offset of the header being read. */
  #headerStart = 0
  /** Size of the block whose prefix is being read. */
  #blockSize = 0
  #blockKind: 'simple' | 'grouped' = 'simple'
  readonly #open: Open[] = []
  #cluster: { offset: number, decided: boolean } | undefined
  #group: { track: number | undefined, referenced: boolean } | undefined
  #videoTracks = new Set<number>()

  protected override partialBytes (): number {
    return this.#buffered
  }

  protected override step (chunk: Buffer, index: number): number {
    if (this.#mode === 'skip') {
      const used = Math.min(this.#skip, chunk.length - index)
      this.collect(chunk.subarray(index, index + used))
      this.#skip -= used
      if (this.#skip === 0) this.#mode = 'header'
      return used
    }
    if (this.#mode === 'header') {
      if (this.#buffered === 0) {
        this.#closeEnded()
        if (this.state === 'opaque') return 0
        this.#headerStart = this.position
      }
      this.#buffer[this.#buffered++] = chunk[index]!
      this.#readHeader()
      return 1
    }
    this.#buffer[this.#buffered++] = chunk[index]!
    this.#readBlockPrefix()
    return 1
  }

  /** Parses the header once its bytes are all there. */
  #readHeader (): void {
    const buffer = this.#buffer
    const idLength = vintLength(buffer[0]!)
    if (idLength > 4) return this.giveUp('invalid element ID')
    if (this.#buffered <= idLength) return
    const sizeLength = vintLength(buffer[idLength]!)
    if (sizeLength > 8) return this.giveUp('invalid element size')
    if (this.#buffered < idLength + sizeLength) return

    const id = buffer.readUIntBE(0, idLength)
    const first = buffer[idLength]! & (0xff >> sizeLength)
    let unknown = first === 0xff >> sizeLength
    let size = first
    for (let i = idLength + 1; i < idLength + sizeLength; i++) {
      unknown &&= buffer[i] === 0xff
      size = size * 256 + buffer[i]!
    }
    const header = Buffer.from(buffer.subarray(0, this.#buffered))
    this.#buffered = 0
    if (!unknown && size > Number.MAX_SAFE_INTEGER) return this.giveUp('element size out of range')
    this.#onElement(id, unknown ? undefined : size, header)
  }

  #onElement (id: number, size: number | undefined, header: Buffer): void {
    const start = this.#headerStart
    const dataStart = start + header.length
    // An element of unknown size ends where an element of its own level or above starts.
    for (let top = this.#top(); top !== undefined && top.end === undefined && this.#endsUnknown(top.id, id); top = this.#top()) {
      this.#close()
    }
    const parent = this.#top()
    if (parent?.end !== undefined && (size === undefined ? dataStart > parent.end : dataStart + size > parent.end)) {
      return this.giveUp('element overruns its parent')
    }

    switch (parent?.id) {
      case undefined:
        if (start === 0 && id !== ID.EBML) return this.giveUp('no EBML header')
        if (start !== 0 && id === ID.EBML) return this.giveUp('a second EBML stream starts')
        this.collect(header)
        if (id === ID.Segment) return this.#enter(id, dataStart, size)
        return this.#skipElement(size)
      case ID.Segment:
        if (id === ID.Cluster) {
          if (this.state === 'init') this.#videoTracks = videoTrackNumbers(this.completeInit())
          this.#cluster = { offset: start, decided: false }
          return this.#enter(id, dataStart, size)
        }
        this.collect(header)
        return this.#skipElement(size)
      case ID.Cluster:
        if (this.#cluster?.decided === false) {
          if (id === ID.SimpleBlock) return this.#startBlockPrefix('simple', size)
          if (id === ID.BlockGroup) {
            if (size === undefined) return this.giveUp('BlockGroup of unknown size')
            this.#group = { track: undefined, referenced: false }
            return this.#enter(id, dataStart, size)
          }
        }
        return this.#skipElement(size)
      case ID.BlockGroup:
        if (id === ID.Block && this.#group?.track === undefined) return this.#startBlockPrefix('grouped', size)
        if (id === ID.ReferenceBlock && this.#group !== undefined) this.#group.referenced = true
        return this.#skipElement(size)
      default:
        return this.#skipElement(size)
    }
  }

  #endsUnknown (parent: number, id: number): boolean {
    if (parent === ID.Cluster) return SEGMENT_LEVEL.has(id) || TOP_LEVEL.has(id)
    return TOP_LEVEL.has(id)
  }

  #top (): Open | undefined {
    return this.#open[this.#open.length - 1]
  }

  #enter (id: number, dataStart: number, size: number | undefined): void {
    this.#open.push({ id, end: size === undefined ? undefined : dataStart + size })
  }

  /** Closes the known-size elements that end at the current position. */
  #closeEnded (): void {
    for (let top = this.#top(); top?.end !== undefined && top.end <= this.position; top = this.#top()) {
      if (top.end < this.position) return this.giveUp('element overruns its parent')
      this.#close()
    }
  }

  #close (): void {
    const element = this.#open.pop()!
    if (element.id === ID.BlockGroup) {
      const group = this.#group
      this.#group = undefined
      if (group?.track !== undefined && this.#isVideo(group.track)) this.#decide(!group.referenced)
    } else if (element.id === ID.Cluster) {
      // A cluster without a video block cannot start a decodable group.
      if (this.#cluster?.decided === false) this.#decide(false)
      this.#cluster = undefined
    }
  }

  #skipElement (size: number | undefined): void {
    if (size === undefined) return this.giveUp('element of unknown size that cannot be skipped')
    this.#skip = size
    this.#mode = size === 0 ? 'header' : 'skip'
  }

  #startBlockPrefix (kind: 'simple' | 'grouped', size: number | undefined): void {
    if (size === undefined) return this.giveUp('block of unknown size')
    this.#blockKind = kind
    this.#blockSize = size
    this.#mode = 'prefix'
    if (size === 0) this.giveUp('empty block')
  }

  /** Block header: track number (VINT), 16-bit timecode, flags. */
  #readBlockPrefix (): void {
    const trackLength = vintLength(this.#buffer[0]!)
    if (trackLength > 8) return this.giveUp('invalid block track number')
    const length = trackLength + 3
    if (length > this.#blockSize) return this.giveUp('block shorter than its header')
    if (this.#buffered < length) return
    const track = readVintValue(this.#buffer, 0, trackLength)
    const flags = this.#buffer[trackLength + 2]!
    this.#buffered = 0
    if (this.#blockKind === 'grouped') {
      if (this.#group !== undefined) this.#group.track = track
    } else if (this.#isVideo(track)) {
      this.#decide((flags & 0x80) !== 0)
    }
    this.#skipElement(this.#blockSize - length)
  }

  #isVideo (track: number): boolean {
    return this.#videoTracks.size === 0 || this.#videoTracks.has(track)
  }

  #decide (keyframe: boolean): void {
    const cluster = this.#cluster
    if (cluster === undefined || cluster.decided) return
    cluster.decided = true
    this.emitSegment(cluster.offset, keyframe)
  }
}

function readVintValue (buffer: Buffer, offset: number, length: number): number {
  let value = buffer[offset]! & (0xff >> length)
  for (let i = offset + 1; i < offset + length; i++) value = value * 256 + buffer[i]!
  return value
}

interface Element { id: number, dataStart: number, end: number }

/**
 * The elements of `buffer[start, end)`, one level deep. An unknown or
 * overlong size extends to `end` (the init segment is cut before the first
 * Cluster, so Segment runs to the end of the buffer). Stops at the first
 * malformed header.
 */
function * elements (buffer: Buffer, start: number, end: number): Generator<Element> {
  let position = start
  while (position < end) {
    const idLength = vintLength(buffer[position]!)
    if (idLength > 4 || position + idLength >= end) return
    const sizeLength = vintLength(buffer[position + idLength]!)
    const dataStart = position + idLength + sizeLength
    if (sizeLength > 8 || dataStart > end) return
    const id = buffer.readUIntBE(position, idLength)
    const size = readVintValue(buffer, position + idLength, sizeLength)
    const elementEnd = Math.min(end, dataStart + size)
    yield { id, dataStart, end: elementEnd }
    position = elementEnd
  }
}

function child (buffer: Buffer, parent: { dataStart: number, end: number }, id: number): Element | undefined {
  for (const element of elements(buffer, parent.dataStart, parent.end)) if (element.id === id) return element
  return undefined
}

/** The numbers of the video tracks an init segment declares (empty when it declares none or cannot be read). */
export function videoTrackNumbers (init: Buffer): Set<number> {
  const numbers = new Set<number>()
  const segment = child(init, { dataStart: 0, end: init.length }, ID.Segment)
  const tracks = segment === undefined ? undefined : child(init, segment, ID.Tracks)
  if (tracks === undefined) return numbers
  for (const entry of elements(init, tracks.dataStart, tracks.end)) {
    if (entry.id !== ID.TrackEntry) continue
    const number = readUint(init, child(init, entry, ID.TrackNumber))
    const type = readUint(init, child(init, entry, ID.TrackType))
    if (number !== undefined && type === TRACK_TYPE_VIDEO) numbers.add(number)
  }
  return numbers
}

function readUint (buffer: Buffer, element: Element | undefined): number | undefined {
  const length = element === undefined ? 0 : element.end - element.dataStart
  return length >= 1 && length <= 6 ? buffer.readUIntBE(element!.dataStart, length) : undefined
}
