/**
 * ISO BMFF (MP4) boxes as the fMP4 scanner reads them: a 32-bit size
 * (1: a 64-bit largesize follows the type; 0: the box runs to the end of the
 * stream), a four-character type read as a big-endian uint32 (no string per
 * box), then the body.
 */

/** A box type as a big-endian uint32. */
export function fourcc (type: string): number {
  return Buffer.from(type, 'latin1').readUInt32BE(0)
}

export const BOX = {
  ftyp: fourcc('ftyp'),
  moov: fourcc('moov'),
  moof: fourcc('moof'),
  traf: fourcc('traf'),
  tfhd: fourcc('tfhd'),
  trun: fourcc('trun'),
} as const

/** Top-level boxes that may belong to the init segment (before the first fragment). */
const INIT_BOXES = new Set(['ftyp', 'moov', 'free', 'skip', 'uuid', 'pdin', 'meta'].map(fourcc))

export function isInitBox (type: number): boolean {
  return INIT_BOXES.has(type)
}

/** Whether all four bytes of a type are printable ASCII. */
export function isBoxType (type: number): boolean {
  for (let shift = 0; shift < 32; shift += 8) {
    const byte = (type >>> shift) & 0xff
    if (byte < 0x20 || byte > 0x7e) return false
  }
  return true
}

export function typeName (type: number): string {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(type >>> 0)
  return bytes.toString('latin1')
}

/**
 * Bytes of a `tfhd`/`trun` body read: enough for every optional `tfhd` field
 * and for `trun`'s header plus its first sample entry.
 */
export const MAX_PAYLOAD = 48

/** sample_is_non_sync_sample in the sample flags. */
const NON_SYNC = 0x00010000

/** Whether sample flags describe a sync sample (and one that depends on no other). */
export function isSyncSample (flags: number): boolean {
  return (flags & NON_SYNC) === 0 && ((flags >>> 24) & 0x3) !== 1
}

/** What a `traf` told so far (one instance per scanner, reset for each `traf`). -1: not given. */
export interface TrackFragment {
  trackId: number
  defaultFlags: number
  /** Flags of the fragment's first sample of this track, from the first `trun`. */
  firstFlags: number
  sawRun: boolean
}

export function resetTrackFragment (traf: TrackFragment): void {
  traf.trackId = -1
  traf.defaultFlags = -1
  traf.firstFlags = -1
  traf.sawRun = false
}

/** tfhd at `buffer[at, at + length)`: version/flags, track_ID, then the optional fields its flags announce. */
export function readTfhd (buffer: Buffer, at: number, length: number, traf: TrackFragment): boolean {
  if (length < 8) return false
  const flags = buffer.readUInt32BE(at) & 0xffffff
  traf.trackId = buffer.readUInt32BE(at + 4)
  let offset = 8
  if ((flags & 0x01) !== 0) offset += 8 // base_data_offset
  if ((flags & 0x02) !== 0) offset += 4 // sample_description_index
  if ((flags & 0x08) !== 0) offset += 4 // default_sample_duration
  if ((flags & 0x10) !== 0) offset += 4 // default_sample_size
  if ((flags & 0x20) !== 0) {
    if (length < offset + 4) return false
    traf.defaultFlags = buffer.readUInt32BE(at + offset)
  }
  return true
}

/** trun at `buffer[at, at + length)`: version/flags, sample_count, optional data_offset and first_sample_flags, then the samples. */
export function readTrun (buffer: Buffer, at: number, length: number, traf: TrackFragment): boolean {
  if (length < 8) return false
  const flags = buffer.readUInt32BE(at) & 0xffffff
  const samples = buffer.readUInt32BE(at + 4)
  let offset = 8
  if ((flags & 0x001) !== 0) offset += 4 // data_offset
  if ((flags & 0x004) !== 0) {
    if (length < offset + 4) return false
    if (samples > 0) traf.firstFlags = buffer.readUInt32BE(at + offset)
    offset += 4
  }
  if (samples === 0) return true
  traf.sawRun = true
  if ((flags & 0x004) === 0 && (flags & 0x400) !== 0) {
    if ((flags & 0x100) !== 0) offset += 4 // sample_duration
    if ((flags & 0x200) !== 0) offset += 4 // sample_size
    if (length < offset + 4) return false
    traf.firstFlags = buffer.readUInt32BE(at + offset)
  }
  return true
}

// ---------------------------------------------------------------- the init segment, once

/** Boxes looked at when reading the init segment: real ones have a few dozen. */
const INIT_BOXES_READ = 4096

interface Box { type: string, bodyStart: number, end: number }

/** The boxes of `buffer[start, end)`, one level deep, while `budget` lasts; stops at the first malformed one. */
function boxes (buffer: Buffer, start: number, end: number, budget: { left: number }): Box[] {
  const found: Box[] = []
  let position = start
  while (position + 8 <= end && budget.left-- > 0) {
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
function readTrak (buffer: Buffer, trak: Box, budget: { left: number }): { id: number, video: boolean } | undefined {
  const children = boxes(buffer, trak.bodyStart, trak.end, budget)
  const tkhd = children.find((box) => box.type === 'tkhd')
  const mdia = children.find((box) => box.type === 'mdia')
  if (tkhd === undefined || tkhd.end - tkhd.bodyStart < 24) return undefined
  // version 0: 32-bit creation/modification times before track_ID; version 1: 64-bit.
  const id = buffer.readUInt32BE(tkhd.bodyStart + (buffer[tkhd.bodyStart] === 1 ? 20 : 12))
  const hdlr = mdia === undefined ? undefined : boxes(buffer, mdia.bodyStart, mdia.end, budget).find((box) => box.type === 'hdlr')
  const video = hdlr !== undefined && hdlr.end - hdlr.bodyStart >= 12 && buffer.toString('latin1', hdlr.bodyStart + 8, hdlr.bodyStart + 12) === 'vide'
  return { id, video }
}

/** What the init segment's `moov` says: the video tracks, and each track's default sample flags (`trex`). */
export interface InitTracks {
  videoTracks: Set<number>
  trexFlags: Map<number, number>
}

/** Reads an init segment's tracks (nothing known when it cannot be read within a few thousand boxes). */
export function readInitTracks (init: Buffer): InitTracks {
  const tracks: InitTracks = { videoTracks: new Set(), trexFlags: new Map() }
  const budget = { left: INIT_BOXES_READ }
  const moov = boxes(init, 0, init.length, budget).find((box) => box.type === 'moov')
  if (moov === undefined) return tracks
  for (const box of boxes(init, moov.bodyStart, moov.end, budget)) {
    if (box.type === 'trak') {
      const track = readTrak(init, box, budget)
      if (track?.video === true) tracks.videoTracks.add(track.id)
    } else if (box.type === 'mvex') {
      for (const trex of boxes(init, box.bodyStart, box.end, budget)) {
        // version/flags, track_ID, default_sample_description_index, _duration, _size, _flags
        if (trex.type === 'trex' && trex.end - trex.bodyStart >= 24) {
          tracks.trexFlags.set(init.readUInt32BE(trex.bodyStart + 4), init.readUInt32BE(trex.bodyStart + 20))
        }
      }
    }
  }
  return budget.left > 0 ? tracks : { videoTracks: new Set(), trexFlags: new Map() }
}
