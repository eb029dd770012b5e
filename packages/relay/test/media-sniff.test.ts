import t from 'tap'
import { createScanner, sniffContainer } from '../src/media/index.js'

// SPEC §5 "Late joiners": WebM (EBML magic) and fragmented MP4 (ftyp first)
// are scanned; anything else is relayed as opaque messages.

t.test('the EBML magic is WebM, a first ftyp box is MP4', async (t) => {
  t.equal(sniffContainer(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86])), 'webm')
  t.equal(sniffContainer(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])), 'webm')
  t.equal(sniffContainer(Buffer.from('0000001c667479706973703500000200', 'hex')), 'mp4')
  t.equal(sniffContainer(Buffer.from('0000001c66747970', 'hex')), 'mp4')
  t.equal(createScanner('webm').format, 'webm')
  t.equal(createScanner('mp4').format, 'mp4')
})

t.test('too few bytes to tell are undecided, empty input included', async (t) => {
  t.equal(sniffContainer(Buffer.alloc(0)), 'undecided')
  t.equal(sniffContainer(Buffer.from([0x1a])), 'undecided')
  t.equal(sniffContainer(Buffer.from([0x1a, 0x45, 0xdf])), 'undecided')
  t.equal(sniffContainer(Buffer.from([0x00, 0x00, 0x00])), 'undecided')
  t.equal(sniffContainer(Buffer.from('0000001c6674', 'hex')), 'undecided')
})

t.test('JPEG, JSON, text and other bytes are opaque', async (t) => {
  t.equal(sniffContainer(Buffer.from([0xff, 0xd8])), 'opaque', 'JPEG SOI')
  t.equal(sniffContainer(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46])), 'opaque', 'JFIF')
  t.equal(sniffContainer(Buffer.from('{"type":"frame","seq":1}')), 'opaque', 'JSON')
  t.equal(sniffContainer(Buffer.from('[1,2,3]')), 'opaque', 'JSON array')
  t.equal(sniffContainer(Buffer.from('hello')), 'opaque', 'text')
  t.equal(sniffContainer(Buffer.from([0x1a, 0x45, 0xdf, 0xa2])), 'opaque', 'almost EBML')
  t.equal(sniffContainer(Buffer.from('0000001c6d6f6f76', 'hex')), 'opaque', 'an MP4 box that is not ftyp')
  t.equal(sniffContainer(Buffer.from('0000001c7374797000000000', 'hex')), 'opaque', 'styp first (a CMAF fragment without init)')
  t.equal(sniffContainer(Buffer.from('47401100', 'hex')), 'opaque', 'MPEG-TS')
})
