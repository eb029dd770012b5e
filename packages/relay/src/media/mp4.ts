import { ContainerScanner } from './scanner.js'

/** Top-level boxes that may belong to the init segment (before the first fragment). */
const INIT_BOXES = new Set(['ftyp', 'moov', 'free', 'skip', 'uuid', 'pdin', 'meta'])
/** Longest box header: size, type, 64-bit largesize. */
const MAX_HEADER = 16
/**
 * Bytes of a `tfhd`/`trun` body read: enough for every optional `tfhd` field
 * and for `trun`'s header plus its first sample entry.
 */
const MAX_PAYLOAD = 48

/** sample_is_non_sync_sample in the sample flags. */
const NON_SYNC = 0x00010000

interface Open {
  type: string
  end: number
}

interface Fragment {
  offset: number
  decided: boolean
}

interface TrackFragment {
  trackId: number | undefined
  defaultFlags: number | undefined
  /** Flags of the fragment's first sample of this track, from the first `trun`. */
  firstFlags: number | undefined
  sawRun: boolean
}

/** Whether sample flags describe a sync sample (and one that depends on no other). */
export function isSyncSample (flags: number): boolean {
  return (flags & NON_SYNC) === 0 && ((flags >>> 24) & 0x3) !== 1
}

/**
 * Incremental box walker for fragmented MP4 (`ffmpeg -movflags
 * frag_keyframe+empty_moov`): `ftyp` + `moov` (and the boxes before the first
 * fragment) are the init segment; each `moof` starts a segment, followed by
 * its `mdat`; `styp`, `sidx`, `free` and other boxes are skipped by size. It
 * descends only into `moof` and `traf` and reads the first bytes of `tfhd` and
 * `trun`, so it never searches the bytes for box types.
 *
 * A fragment is a keyframe segment when its video track's first sample is a
 * sync sample; its flags come from `trun` (first_sample_flags, else the first
 * sample's flags), else `tfhd` default_sample_flags, else `trex` in the init
 * segment. Without a video track in the init segment the first `traf` decides.
 *
 * A box of size 0 (to the end of the stream) is accepted only after the init
 * segment: nothing after it is scanned.
 */
export class Mp4Scanner extends ContainerScanner {
  readonly format = 'mp4' as const

  readonly #buffer = Buffer.alloc(Math.max(MAX_HEADER, MAX_PAYLOAD))
  #buffered = 0
  #mode: 'header' | 'payload' | 'skip' | 'rest' = 'header'
  #skip = 0
  #headerStart = 0
  /** The box whose body prefix is being read and the bytes wanted. */
  #payload: { type: string, size: number, wanted: number } = { type: '', size: 0, wanted: 0 }
  readonly #open: Open[] = []
  #sawMoov = false
  #fragment: Fragment | undefined
  #trackFragment: TrackFragment | undefined
  #videoTracks = new Set<number>()
  #trexFlags = new Map<number, number>()

  protected override partialBytes (): number {
    return this.#buffered
  }

  protected override step (chunk: Buffer, index: number): number {
    switch (this.#mode) {
      case 'rest':
        return chunk.length - index
      case 'skip': {
        const used = Math.min(this.#skip, chunk.length - index)
        this.collect(chunk.subarray(index, index + used))
        this.#skip -= used
        if (this.#skip === 0) this.#mode = 'header'
        return used
      }
      case 'header':
        if (this.#buffered === 0) {
          this.#closeEnded()
          if (this.state === 'opaque') return 0
          this.#headerStart = this.position
        }
        this.#buffer[this.#buffered++] = chunk[index]!
        this.#readHeader()
        return 1
      case 'payload':
        this.#buffer[this.#buffered++] = chunk[index]!
        if (this.#buffered === this.#payload.wanted) this.#readPayload()
        return 1
    }
  }

  #readHeader (): void {
    const buffer = this.#buffer
    if (this.#buffered < 8) return
    let size = buffer.readUInt32BE(0)
    if (size === 1) {
      if (this.#buffered < 16) return
      const large = buffer.readBigUInt64BE(8)
      if (large > BigInt(Number.MAX_SAFE_INTEGER)) return this.giveUp('box size out of range')
      size = Number(large)
    }
    const headerLength = this.#buffered
    const type = buffer.toString('latin1', 4, 8)
    const header = Buffer.from(buffer.subarray(0, headerLength))
    this.#buffered = 0
    if (!/^[\x20-\x7e]{4}$/.test(type)) return this.giveUp('not a box type')
    if (size !== 0 && size < headerLength) return this.giveUp('box smaller than its header')
    this.#onBox(type, size === 0 ? undefined : size - headerLength, header)
  }

  /** `bodySize` undefined: the box extends to the end of the stream. */
  #onBox (type: string, bodySize: number | undefined, header: Buffer): void {
    const start = this.#headerStart
    const bodyStart = start + header.length
    const parent = this.#open[this.#open.length - 1]
    if (parent !== undefined && (bodySize === undefined || bodyStart + bodySize > parent.end)) {
      return this.giveUp('box overruns its parent')
    }

    switch (parent?.type) {
      case undefined:
        if (start === 0 && type !== 'ftyp') return this.giveUp('no ftyp box')
        if (this.state === 'init') {
          if (INIT_BOXES.has(type)) {
            if (type === 'moov') this.#sawMoov = true
            this.collect(header)
            if (bodySize === undefined) return this.giveUp('init segment extends to the end of the stream')
            return this.#skipBody(bodySize)
          }
          if (!this.#sawMoov) return this.giveUp(`${type} box before moov`)
          this.#readInit(this.completeInit())
        }
        if (bodySize === undefined) {
          this.#mode = 'rest'
          return
        }
        if (type === 'moof') {
          this.#fragment = { offset: start, decided: false }
          this.#open.push({ type, end: bodyStart + bodySize })
          return
        }
        return this.#skipBody(bodySize)
      case 'moof':
        if (type === 'traf' && this.#fragment?.decided === false) {
          this.#trackFragment = { trackId: undefined, defaultFlags: undefined, firstFlags: undefined, sawRun: false }
          this.#open.push({ type, end: bodyStart + bodySize! })
          return
        }
        return this.#skipBody(bodySize!)
      case 'traf':
        if (type === 'tfhd' || (type === 'trun' && this.#trackFragment?.sawRun === false)) {
          const wanted = Math.min(bodySize!, MAX_PAYLOAD)
          if (wanted === 0) return this.giveUp(`empty ${type} box`)
          this.#payload = { type, size: bodySize!, wanted }
          this.#mode = 'payload'
          return
        }
        return this.#skipBody(bodySize!)
      default:
        return this.#skipBody(bodySize!)
    }
  }

  #skipBody (size: number): void {
    this.#skip = size
    this.#mode = size === 0 ? 'header' : 'skip'
  }

  #closeEnded (): void {
    for (let top = this.#open.at(-1); top !== undefined && top.end <= this.position; top = this.#open.at(-1)) {
      if (top.end < this.position) return this.giveUp('box overruns its parent')
      this.#open.pop()
      if (top.type === 'traf') this.#closeTrackFragment()
      else if (top.type === 'moof') {
        if (this.#fragment?.decided === false) this.#decide(false)
        this.#fragment = undefined
      }
    }
  }

  #readPayload (): void {
    const { type, size, wanted } = this.#payload
    const body = this.#buffer.subarray(0, wanted)
    this.#buffered = 0
    const traf = this.#trackFragment
    const parsed = traf === undefined || (type === 'tfhd' ? readTfhd(body, traf) : readTrun(body, traf))
    if (!parsed) return this.giveUp(`malformed ${type} box`)
    this.#skipBody(size - wanted)
  }

  #closeTrackFragment (): void {
    const traf = this.#trackFragment
    this.#trackFragment = undefined
    if (traf?.trackId === undefined || !traf.sawRun) return
    if (this.#videoTracks.size > 0 && !this.#videoTracks.has(traf.trackId)) return
    const flags = traf.firstFlags ?? traf.defaultFlags ?? this.#trexFlags.get(traf.trackId)
    this.#decide(flags !== undefined && isSyncSample(flags))
  }

  #decide (keyframe: boolean): void {
    const fragment = this.#fragment
    if (fragment === undefined || fragment.decided) return
    fragment.decided = true
    this.emitSegment(fragment.offset, keyframe)
  }

  #readInit (init: Buffer): void {
    const moov = boxes(init, 0, init.length).find((box) => box.type === 'moov')
    if (moov === undefined) return
    for (const box of boxes(init, moov.bodyStart, moov.end)) {
      if (box.type === 'trak') {
        const track = readTrak(init, box)
        if (track?.video === true) this.#videoTracks.add(track.id)
      } else if (box.type === 'mvex') {
        for (const trex of boxes(init, box.bodyStart, box.end)) {
          // version/flags, track_ID, default_sample_description_index, _duration, _size, _flags
          if (trex.type === 'trex' && trex.end - trex.bodyStart >= 24) {
            this.#trexFlags.set(init.readUInt32BE(trex.bodyStart + 4), init.readUInt32BE(trex.bodyStart + 20))
          }
        }
      }
    }
  }
}

/** tfhd: version/flags, track_ID, then the optional fields its flags announce. */
function readTfhd (body: Buffer, traf: TrackFragment): boolean {
  if (body.length < 8) return false
  const flags = body.readUInt32BE(0) & 0xffffff
  traf.trackId = body.readUInt32BE(4)
  let offset = 8
  if ((flags & 0x01) !== 0) offset += 8 // base_data_offset
  if ((flags & 0x02) !== 0) offset += 4 // sample_description_index
  if ((flags & 0x08) !== 0) offset += 4 // default_sample_duration
  if ((flags & 0x10) !== 0) offset += 4 // default_sample_size
  if ((flags & 0x20) !== 0) {
    if (body.length < offset + 4) return false
    traf.defaultFlags = body.readUInt32BE(offset)
  }
  return true
}

/** trun: version/flags, sample_count, optional data_offset and first_sample_flags, then the samples. */
function readTrun (body: Buffer, traf: TrackFragment): boolean {
  if (body.length < 8) return false
  const flags = body.readUInt32BE(0) & 0xffffff
  const samples = body.readUInt32BE(4)
  let offset = 8
  if ((flags & 0x001) !== 0) offset += 4 // data_offset
  if ((flags & 0x004) !== 0) {
    if (body.length < offset + 4) return false
    if (samples > 0) traf.firstFlags = body.readUInt32BE(offset)
    offset += 4
  }
  if (samples === 0) return true
  traf.sawRun = true
  if ((flags & 0x004) === 0 && (flags & 0x400) !== 0) {
    if ((flags & 0x100) !== 0) offset += 4 // sample_duration
    if ((flags & 0x200) !== 0) offset += 4 // sample_size
    if (body.length < offset + 4) return false
    traf.firstFlags = body.readUInt32BE(offset)
  }
  return true
}

interface Box { type: string, bodyStart: number, end: number }

/** The boxes of `buffer[start, end)`, one level deep; stops at the first malformed one. */
function boxes (buffer: Buffer, start: number, end: number): Box[] {
  const found: Box[] = []
  let position = start
  while (position + 8 <= end) {
    let size = buffer.readUInt32BE(position)
    let headerLength = 8
    if (size === 1) {
      if (position + 16 > end) break
      size = Number(buffer.readBigUInt64BE(position + 8))
      headerLength = 16
    } else if (size === 0) {
      size = end - position
    }
    if (size < headerLength || position + size > end) break
    found.push({ type: buffer.toString('latin1', position + 4, position + 8), bodyStart: position + headerLength, end: position + size })
    position += size
  }
  return found
}

/** A trak's track_ID (tkhd) and whether its handler (mdia/hdlr) is video. */
function readTrak (buffer: Buffer, trak: Box): { id: number, video: boolean } | undefined {
  const children = boxes(buffer, trak.bodyStart, trak.end)
  const tkhd = children.find((box) => box.type === 'tkhd')
  const mdia = children.find((box) => box.type === 'mdia')
  if (tkhd === undefined || tkhd.end - tkhd.bodyStart < 24) return undefined
  // version 0: 32-bit creation/modification times before track_ID; version 1: 64-bit.
  const id = buffer.readUInt32BE(tkhd.bodyStart + (buffer[tkhd.bodyStart] === 1 ? 20 : 12))
  const hdlr = mdia === undefined ? undefined : boxes(buffer, mdia.bodyStart, mdia.end).find((box) => box.type === 'hdlr')
  const video = hdlr !== undefined && hdlr.end - hdlr.bodyStart >= 12 && buffer.toString('latin1', hdlr.bodyStart + 8, hdlr.bodyStart + 12) === 'vide'
  return { id, video }
}
