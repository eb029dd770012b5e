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
 *   large an init segment, an unsupported layout) or costs more to follow
 *   than its limits allow (ScanLimits). The scanner stops; the stream must be
 *   relayed as opaque bytes from now on. `offset` is the byte at which the
 *   scanner noticed (e.g. the last byte of a bad header); `cause` tells a
 *   malformed stream from one that reached a limit.
 */
export type ScanEvent =
  | { type: 'init', bytes: Buffer }
  | { type: 'segment', offset: number, keyframe: boolean }
  | { type: 'opaque', offset: number, reason: string, cause: OpaqueCause }

/** Why a scanner stopped: `malformed` input, or a `limit` (ScanLimits, `maxInitBytes`) reached. */
export type OpaqueCause = 'malformed' | 'limit'

/** `init`: before the init segment ended; `media`: after; `opaque`: gave up, for good. */
export type ScannerState = 'init' | 'media' | 'opaque'
