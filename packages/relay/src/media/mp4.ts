import {
  BOX, isBoxType, isInitBox, isSyncSample, MAX_PAYLOAD, readInitTracks, readTfhd, readTrun, resetTrackFragment, typeName, type TrackFragment,
} from './mp4-boxes.js'
import { OpenElements } from './open-elements.js'
import { ContainerScanner } from './scanner.js'

/** moof > traf: the only boxes the walker enters. */
const MAX_DEPTH = 2
/** No fragment open. */
const NONE = -1
/** The "parent" of a top-level box (OpenElements.innermost with none open). */
const NO_PARENT = 0
/** Body size of a box of size 0 (it runs to the end of the stream). */
const TO_THE_END = -1

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
 *
 * Cost: one read per box header or `tfhd`/`trun` prefix, bounded by
 * ScanLimits; box types are compared as numbers and the open boxes live in
 * fixed typed arrays, so nothing is allocated per box.
 */
export class Mp4Scanner extends ContainerScanner {
  readonly format = 'mp4' as const

  readonly #open = new OpenElements(MAX_DEPTH)
  /** The `tfhd`/`trun` whose body prefix is the next read: its type, body size and the bytes read. */
  #payloadType = 0
  #payloadSize = 0
  #payloadWanted = 0
  #sawMoov = false
  #fragmentOffset = NONE
  #fragmentDecided = false
  #inTrackFragment = false
  readonly #traf: TrackFragment = { trackId: -1, defaultFlags: -1, firstFlags: -1, sawRun: false }
  #videoTracks = new Set<number>()
  #trexFlags = new Map<number, number>()

  protected override read (buffer: Buffer, start: number, end: number, offset: number): number {
    if (this.#payloadWanted > 0) return this.#readPayload(buffer, start, end, offset)
    if (this.#open.innermostEnd <= offset && !this.#open.closeEnded(offset, this.#closed)) return this.fail('box overruns its parent', offset)
    if (end - start < 8) return 0
    let size = buffer.readUInt32BE(start)
    const type = buffer.readUInt32BE(start + 4)
    let headerLength = 8
    if (size === 1) {
      if (end - start < 16) return 0
      const high = buffer.readUInt32BE(start + 8)
      if (high > 0x1fffff) return this.fail('box size out of range', offset + 15)
      size = high * 2 ** 32 + buffer.readUInt32BE(start + 12)
      headerLength = 16
    }
    const last = offset + headerLength - 1
    if (!isBoxType(type)) return this.fail('not a box type', last)
    if (size !== 0 && size < headerLength) return this.fail('box smaller than its header', last)
    this.#onBox(type, size === 0 ? TO_THE_END : size - headerLength, offset, headerLength)
    return headerLength
  }

  #onBox (type: number, bodySize: number, start: number, headerLength: number): void {
    const bodyStart = start + headerLength
    const last = bodyStart - 1
    const parent = this.#open.innermost
    if (parent !== NO_PARENT && (bodySize === TO_THE_END || bodyStart + bodySize > this.#open.innermostEnd)) {
      return this.giveUp('box overruns its parent', last)
    }

    switch (parent) {
      case NO_PARENT:
        if (start === 0 && type !== BOX.ftyp) return this.giveUp('no ftyp box', last)
        if (this.state === 'init') {
          if (isInitBox(type)) {
            if (type === BOX.moov) this.#sawMoov = true
            if (bodySize === TO_THE_END) return this.giveUp('init segment extends to the end of the stream', last)
            return this.skip(bodySize)
          }
          if (!this.#sawMoov) return this.giveUp(`${typeName(type)} box before moov`, last)
          const tracks = readInitTracks(this.completeInit(start))
          this.#videoTracks = tracks.videoTracks
          this.#trexFlags = tracks.trexFlags
        }
        if (bodySize === TO_THE_END) return this.skip(Infinity)
        if (type === BOX.moof) {
          this.#fragmentOffset = start
          this.#fragmentDecided = false
          return this.#enter(type, bodyStart + bodySize, last)
        }
        return this.skip(bodySize)
      case BOX.moof:
        if (type === BOX.traf && !this.#fragmentDecided) {
          resetTrackFragment(this.#traf)
          this.#inTrackFragment = true
          return this.#enter(type, bodyStart + bodySize, last)
        }
        return this.skip(bodySize)
      case BOX.traf:
        if (type === BOX.tfhd || (type === BOX.trun && !this.#traf.sawRun)) {
          const wanted = Math.min(bodySize, MAX_PAYLOAD)
          if (wanted === 0) return this.giveUp(`empty ${typeName(type)} box`, last)
          this.#payloadType = type
          this.#payloadSize = bodySize
          this.#payloadWanted = wanted
          return
        }
        return this.skip(bodySize)
      default:
        return this.skip(bodySize)
    }
  }

  #enter (type: number, end: number, last: number): void {
    if (!this.#open.open(type, end)) this.giveUp('boxes nested too deep', last)
  }

  readonly #closed = (type: number): void => {
    if (type === BOX.traf) {
      this.#closeTrackFragment()
    } else if (type === BOX.moof) {
      this.#decide(false)
      this.#fragmentOffset = NONE
    }
  }

  #readPayload (buffer: Buffer, start: number, end: number, offset: number): number {
    const wanted = this.#payloadWanted
    if (end - start < wanted) return 0
    this.#payloadWanted = 0
    const parsed = !this.#inTrackFragment || (this.#payloadType === BOX.tfhd
      ? readTfhd(buffer, start, wanted, this.#traf)
      : readTrun(buffer, start, wanted, this.#traf))
    if (!parsed) return this.fail(`malformed ${typeName(this.#payloadType)} box`, offset + wanted - 1)
    this.skip(this.#payloadSize - wanted)
    return wanted
  }

  #closeTrackFragment (): void {
    const traf = this.#traf
    this.#inTrackFragment = false
    if (traf.trackId === -1 || !traf.sawRun) return
    if (this.#videoTracks.size > 0 && !this.#videoTracks.has(traf.trackId)) return
    const flags = traf.firstFlags !== -1 ? traf.firstFlags : traf.defaultFlags !== -1 ? traf.defaultFlags : this.#trexFlags.get(traf.trackId)
    this.#decide(flags !== undefined && isSyncSample(flags))
  }

  #decide (keyframe: boolean): void {
    if (this.#fragmentOffset === NONE || this.#fragmentDecided) return
    this.#fragmentDecided = true
    this.emitSegment(this.#fragmentOffset, keyframe)
  }
}
