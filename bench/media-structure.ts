/**
 * An independent whole-file walk of a real stream: the stream offsets of the
 * headers the relay's scanners read (WebM: top level, Segment, Cluster and
 * BlockGroup children; MP4: top level, moof and traf children) and of the
 * segments (Clusters, moofs). What the scanners' caps are measured against.
 */
export interface Structure {
  elements: number[]
  segments: number[]
  /** The most offsets that fall into one message when the stream is cut into messages of `size` bytes. */
  most (offsets: number[], size: number): number
}

const WEBM_DESCEND = new Set([0x18538067, 0x1f43b675, 0xa0]) // Segment, Cluster, BlockGroup
const CLUSTER = 0x1f43b675

export function structure (format: 'webm' | 'mp4', bytes: Buffer): Structure {
  const elements: number[] = []
  const segments: number[] = []
  let position = 0
  while (position < bytes.length) {
    elements.push(position)
    if (format === 'webm') {
      const idLength = Math.clz32(bytes[position]!) - 23
      const sizeLength = Math.clz32(bytes[position + idLength]!) - 23
      if (idLength > 4 || sizeLength > 8 || position + idLength + sizeLength > bytes.length) break
      const id = bytes.readUIntBE(position, idLength)
      let size = bytes[position + idLength]! & (0xff >> sizeLength)
      for (let i = 1; i < sizeLength; i++) size = size * 256 + bytes[position + idLength + i]!
      if (id === CLUSTER) segments.push(position)
      position += idLength + sizeLength + (WEBM_DESCEND.has(id) ? 0 : size)
    } else {
      if (position + 8 > bytes.length) break
      const size = bytes.readUInt32BE(position)
      const type = bytes.toString('latin1', position + 4, position + 8)
      if (type === 'moof') segments.push(position)
      if (size === 0) break
      position += type === 'moof' || type === 'traf' ? 8 : (size === 1 ? Number(bytes.readBigUInt64BE(position + 8)) : size)
    }
  }
  return {
    elements,
    segments,
    most (offsets, size) {
      const counts = new Map<number, number>()
      for (const offset of offsets) counts.set(Math.floor(offset / size), (counts.get(Math.floor(offset / size)) ?? 0) + 1)
      return Math.max(0, ...counts.values())
    },
  }
}
