/**
 * Media built to be expensive for the relay's container scanners and
 * late-join cache (SPEC §10): valid WebM / fragmented MP4 starts followed by
 * floods of the smallest elements or boxes the formats allow. Shared by the
 * fuzz and acceptance tests and by `bench/hostile-media.ts`.
 */

/** An EBML element: `id` as written (marker bits kept), a 1- or 8-byte size (8: all ones = unknown). */
export function ebmlElement (id: number, body: Buffer | null, sizeLength: 1 | 8 = 8): Buffer {
  const idBytes = Buffer.from(id.toString(16).padStart(2, '0').replace(/^(.(..)*)$/, '0$1'), 'hex')
  const size = Buffer.alloc(sizeLength)
  if (body === null) {
    size.fill(0xff)
    size[0] = sizeLength === 1 ? 0xff : 0x01
  } else if (sizeLength === 1) {
    if (body.length > 126) throw new Error(`a 1-byte EBML size cannot hold ${body.length}`)
    size[0] = 0x80 | body.length
  } else {
    size.writeBigUInt64BE(BigInt(body.length) | (1n << 56n))
  }
  return Buffer.concat([idBytes, size, body ?? Buffer.alloc(0)])
}

/** EBML header, a Segment of unknown size, Info and Tracks with one video track (number 1): a WebM init segment. */
export function webmInit (): Buffer {
  const header = ebmlElement(0x1a45dfa3, ebmlElement(0x4282, Buffer.from('webm')))
  const info = ebmlElement(0x1549a966, ebmlElement(0x2ad7b1, Buffer.from([0x0f, 0x42, 0x40])))
  const track = ebmlElement(0xae, Buffer.concat([ebmlElement(0xd7, Buffer.from([1]), 1), ebmlElement(0x83, Buffer.from([1]), 1)]))
  const tracks = ebmlElement(0x1654ae6b, track)
  return Buffer.concat([header, ebmlElement(0x18538067, null), info, tracks])
}

/** A keyframe SimpleBlock of track 1 (`A3 84 81 00 00 80`, then one byte of frame data): 7 bytes. */
export const WEBM_KEY_BLOCK = Buffer.from('a385810000800a', 'hex')

/** A Cluster of unknown size whose first block is a video keyframe. */
export function webmKeyClusterStart (): Buffer {
  return Buffer.concat([ebmlElement(0x1f43b675, null), Buffer.from('e78100', 'hex'), WEBM_KEY_BLOCK])
}

/**
 * `bytes` of WebM: the init segment, a keyframe Cluster of unknown size, then
 * 2-byte `Void` elements (`EC 80`) to the end.
 */
export function webmVoidFlood (bytes: number): Buffer {
  const start = Buffer.concat([webmInit(), webmKeyClusterStart()])
  const flood = Buffer.alloc(Math.max(0, bytes - start.length))
  for (let i = 0; i + 1 < flood.length; i += 2) {
    flood[i] = 0xec
    flood[i + 1] = 0x80
  }
  return Buffer.concat([start, flood.subarray(0, flood.length - (flood.length % 2))])
}

/** One 11-byte keyframe Cluster of known size: Cluster ID, size 6, a SimpleBlock with no frame data. */
const TINY_KEY_CLUSTER = Buffer.from('1f43b67586a384810000 80'.replace(/ /g, ''), 'hex')

/** `bytes` of WebM: the init segment, then Clusters of 11 bytes, each starting with a keyframe. */
export function webmTinyClusters (bytes: number): Buffer {
  const init = webmInit()
  const count = Math.max(0, Math.floor((bytes - init.length) / TINY_KEY_CLUSTER.length))
  const out = Buffer.alloc(init.length + count * TINY_KEY_CLUSTER.length)
  init.copy(out)
  for (let i = 0; i < count; i++) TINY_KEY_CLUSTER.copy(out, init.length + i * TINY_KEY_CLUSTER.length)
  return out
}

/** An MP4 box: 32-bit size, type, body. */
export function mp4Box (type: string, ...body: Buffer[]): Buffer {
  const content = Buffer.concat(body)
  const header = Buffer.alloc(8)
  header.writeUInt32BE(8 + content.length, 0)
  header.write(type, 4, 'latin1')
  return Buffer.concat([header, content])
}

/** ftyp + an empty moov: the smallest init segment the MP4 scanner accepts. */
export function mp4Init (): Buffer {
  return Buffer.concat([mp4Box('ftyp', Buffer.from('isom'), Buffer.alloc(4)), mp4Box('moov')])
}

/** A fragment whose track 1 starts with a sync sample: moof(mfhd, traf(tfhd, trun with first_sample_flags 0)). */
export function mp4KeyFragment (): Buffer {
  const tfhd = mp4Box('tfhd', Buffer.from('00000000' + '00000001', 'hex'))
  const trun = mp4Box('trun', Buffer.from('00000004' + '00000001' + '00000000', 'hex'))
  return mp4Box('moof', mp4Box('mfhd', Buffer.alloc(8)), mp4Box('traf', tfhd, trun))
}

/** `bytes` of fMP4: the init segment, one keyframe fragment, then 8-byte `free` boxes to the end. */
export function mp4FreeFlood (bytes: number): Buffer {
  const start = Buffer.concat([mp4Init(), mp4KeyFragment()])
  const count = Math.max(0, Math.floor((bytes - start.length) / 8))
  const out = Buffer.alloc(start.length + count * 8)
  start.copy(out)
  for (let i = 0; i < count; i++) {
    out.writeUInt32BE(8, start.length + i * 8)
    out.write('free', start.length + i * 8 + 4, 'latin1')
  }
  return out
}

/** `bytes` of fMP4: the init segment, then keyframe fragments (each followed by an empty mdat) to the end. */
export function mp4TinyFragments (bytes: number): Buffer {
  const init = mp4Init()
  const fragment = Buffer.concat([mp4KeyFragment(), mp4Box('mdat')])
  const count = Math.max(0, Math.floor((bytes - init.length) / fragment.length))
  const out = Buffer.alloc(init.length + count * fragment.length)
  init.copy(out)
  for (let i = 0; i < count; i++) fragment.copy(out, init.length + i * fragment.length)
  return out
}

/** A SimpleBlock header (track 1, not a keyframe, 8-byte size) announcing `size` bytes of frame data after it. */
export function webmBlockHeader (size: number): Buffer {
  const header = Buffer.alloc(13)
  header[0] = 0xa3
  header.writeBigUInt64BE((1n << 56n) | BigInt(size + 4), 1)
  header.writeUInt32BE(0x81000000, 9)
  return header
}
