import t from 'tap'
import { sniffMimeType } from '../src/sniff.js'

const bytes = (...parts: Array<number[] | string>) => new Uint8Array(parts.flatMap((part) => typeof part === 'string' ? [...Buffer.from(part, 'latin1')] : part))
const EBML = [0x1a, 0x45, 0xdf, 0xa3]
const CLUSTER = [0x1f, 0x43, 0xb6, 0x75]

t.test('WebM: codecs from the init segment only', async (t) => {
  t.equal(sniffMimeType(bytes(EBML, '....V_VP8....')), 'video/webm; codecs="vp8"')
  t.equal(sniffMimeType(bytes(EBML, '..V_VP9..A_OPUS..')), 'video/webm; codecs="vp9,opus"')
  t.equal(sniffMimeType(bytes(EBML, '..V_VP8..', CLUSTER, '..A_OPUS..')), 'video/webm; codecs="vp8"', 'codec ids after the first Cluster are media bytes')
  t.equal(sniffMimeType(bytes(EBML)), 'video/webm; codecs="vp8"', 'a cut-short header means MediaRecorder\'s default')
})

t.test('fragmented MP4: the avc1 profile and level from avcC', async (t) => {
  const head = bytes([0, 0, 0, 24], 'ftypisom', [0, 0, 2, 0], '....moov....avc1....avcC', [1, 0x42, 0xc0, 0x1e], '....')
  t.equal(sniffMimeType(head), 'video/mp4; codecs="avc1.42C01E"')
  t.equal(sniffMimeType(bytes([0, 0, 0, 24], 'ftypisom....mp4a')), 'audio/mp4; codecs="mp4a.40.2"')
})

t.test('anything else is not a MediaSource stream', async (t) => {
  t.equal(sniffMimeType(bytes([0xff, 0xd8, 0xff, 0xe0], 'JFIF')), undefined)
  t.equal(sniffMimeType(bytes('{"hello":1}')), undefined)
  t.equal(sniffMimeType(new Uint8Array(0)), undefined)
})
