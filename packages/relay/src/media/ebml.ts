/**
 * EBML (RFC 8794) as WebM uses it: element IDs and sizes are variable-length
 * integers (VINT) whose first byte's leading zeros give their length; an ID
 * keeps its marker bit, a size drops it, and a size whose value bits are all
 * ones is "unknown" (the element runs until something that cannot be its
 * child starts).
 */

/** Element IDs as read from the stream (VINT marker bits kept). */
export const ID = {
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

/** Size of an element of unknown size. */
export const UNKNOWN_SIZE = -1

/** Length of a VINT from its first byte; 9 when the byte is 0 (invalid). */
export function vintLength (first: number): number {
  return Math.clz32(first) - 23
}

/** Whether an ID is a top-level element (EBML header, Segment). */
export function isTopLevel (id: number): boolean {
  return id === ID.EBML || id === ID.Segment
}

/** Whether an ID is a child of Segment: one of them ends a Cluster of unknown size. */
export function isSegmentLevel (id: number): boolean {
  switch (id) {
    case 0x114d9b74: // SeekHead
    case 0x1549a966: // Info
    case ID.Tracks:
    case 0x1043a770: // Chapters
    case ID.Cluster:
    case 0x1c53bb6b: // Cues
    case 0x1941a469: // Attachments
    case 0x1254c367: // Tags
      return true
    default:
      return false
  }
}

/** A VINT's value (marker bit dropped); may exceed 2^53 (then inexact, but still > Number.MAX_SAFE_INTEGER). */
export function readVint (buffer: Buffer, offset: number, length: number): number {
  let value = buffer[offset]! & (0xff >> length)
  for (let i = offset + 1; i < offset + length; i++) value = value * 256 + buffer[i]!
  return value
}

// ---------------------------------------------------------------- the init segment, once

const TRACK_TYPE_VIDEO = 1
/** Elements looked at when reading the init segment's tracks: real ones have a few dozen. */
const INIT_ELEMENTS_READ = 4096

interface Element { id: number, dataStart: number, end: number }

/**
 * The elements of `buffer[start, end)`, one level deep, while `budget` lasts
 * (one per element). An unknown or overlong size extends to `end` (the init
 * segment is cut before the first Cluster, so Segment runs to the end of the
 * buffer). Stops at the first malformed header.
 */
function * elements (buffer: Buffer, start: number, end: number, budget: { left: number }): Generator<Element> {
  let position = start
  while (position < end && budget.left-- > 0) {
    const idLength = vintLength(buffer[position]!)
    if (idLength > 4 || position + idLength >= end) return
    const sizeLength = vintLength(buffer[position + idLength]!)
    const dataStart = position + idLength + sizeLength
    if (sizeLength > 8 || dataStart > end) return
    const id = buffer.readUIntBE(position, idLength)
    const size = readVint(buffer, position + idLength, sizeLength)
    const elementEnd = Math.min(end, dataStart + size)
    yield { id, dataStart, end: elementEnd }
    position = elementEnd
  }
}

function child (buffer: Buffer, parent: { dataStart: number, end: number }, id: number, budget: { left: number }): Element | undefined {
  for (const element of elements(buffer, parent.dataStart, parent.end, budget)) if (element.id === id) return element
  return undefined
}

/**
 * The numbers of the video tracks an init segment declares (empty when it
 * declares none or cannot be read within a few thousand elements).
 */
export function videoTrackNumbers (init: Buffer): Set<number> {
  const numbers = new Set<number>()
  const budget = { left: INIT_ELEMENTS_READ }
  const segment = child(init, { dataStart: 0, end: init.length }, ID.Segment, budget)
  const tracks = segment === undefined ? undefined : child(init, segment, ID.Tracks, budget)
  if (tracks === undefined) return numbers
  for (const entry of elements(init, tracks.dataStart, tracks.end, budget)) {
    if (entry.id !== ID.TrackEntry) continue
    const number = readUint(init, child(init, entry, ID.TrackNumber, budget))
    const type = readUint(init, child(init, entry, ID.TrackType, budget))
    if (number !== undefined && type === TRACK_TYPE_VIDEO) numbers.add(number)
  }
  return budget.left > 0 ? numbers : new Set()
}

function readUint (buffer: Buffer, element: Element | undefined): number | undefined {
  const length = element === undefined ? 0 : element.end - element.dataStart
  return length >= 1 && length <= 6 ? buffer.readUIntBE(element!.dataStart, length) : undefined
}
