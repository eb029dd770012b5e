import t, { type Test } from 'tap'
import { Mp4Scanner, WebmScanner, type ContainerScanner, type ScanEvent } from '../src/media/index.js'
import { decode, ffprobe, mediaMaker, prng, split } from './media-helper.js'

// SPEC §5 "Late joiners": the relay keeps the init segment and finds the
// container boundaries (WebM Clusters, MP4 moof) and whether they start on a
// keyframe, from the publisher's messages of any size. The streams are made
// by ffmpeg at test time; ground truth comes from an independent whole-file
// parse here and from ffprobe's packet flags.

const ffmpeg = await mediaMaker(t, 'media-scanners-', '320x240')

const VP8 = ['-c:v', 'libvpx', '-deadline', 'realtime', '-g', '25']
const webm = await ffmpeg('out.webm', [...VP8, '-f', 'webm', '-live', '1'])
/** Clusters cut by size, not at keyframes: most clusters start mid-group. */
const webmSplit = await ffmpeg('split.webm', [...VP8, '-cluster_size_limit', '3000', '-f', 'webm', '-live', '1'])
const mp4 = await ffmpeg('out.mp4', [
  '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-profile:v', 'baseline', '-g', '25',
  '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof',
])
/** Several fragments per group of pictures. */
const mp4Short = await ffmpeg('short.mp4', [
  '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-profile:v', 'baseline', '-g', '25',
  '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '200000',
])

// ---------------------------------------------------------------- helpers

function randomChunks (bytes: Buffer, seed: number, max = 20_000): Buffer[] {
  return split(bytes, prng(seed), max)
}

function bytewise (bytes: Buffer): Buffer[] {
  return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1))
}

/** Cuts the stream right after the given offsets (each chunk ends there). */
function cutAt (bytes: Buffer, offsets: number[]): Buffer[] {
  const bounds = [0, ...offsets.filter((offset) => offset > 0 && offset < bytes.length), bytes.length]
  return bounds.slice(1).map((end, i) => bytes.subarray(bounds[i], end))
}

interface Scan { events: ScanEvent[], maxRetained: number, scanner: ContainerScanner }

function scan (scanner: ContainerScanner, chunks: Buffer[]): Scan {
  const events: ScanEvent[] = []
  let maxRetained = 0
  for (const chunk of chunks) {
    events.push(...scanner.push(chunk))
    maxRetained = Math.max(maxRetained, scanner.retainedBytes)
  }
  return { events, maxRetained, scanner }
}

function segments (events: ScanEvent[]): Array<{ offset: number, keyframe: boolean }> {
  return events.flatMap((event) => event.type === 'segment' ? [{ offset: event.offset, keyframe: event.keyframe }] : [])
}

function initOf (events: ScanEvent[]): Buffer | undefined {
  const init = events.find((event) => event.type === 'init')
  return init?.type === 'init' ? init.bytes : undefined
}

function vintLength (first: number): number {
  return Math.clz32(first) - 23
}

/** Independent whole-file walk: offsets of the Clusters in a Segment whose clusters have known sizes. */
function clusterOffsets (bytes: Buffer): number[] {
  const offsets: number[] = []
  let position = 0
  let inSegment = false
  while (position < bytes.length) {
    const idLength = vintLength(bytes[position]!)
    const sizeLength = vintLength(bytes[position + idLength]!)
    const id = bytes.readUIntBE(position, idLength)
    let size = bytes[position + idLength]! & (0xff >> sizeLength)
    for (let i = 1; i < sizeLength; i++) size = size * 256 + bytes[position + idLength + i]!
    const dataStart = position + idLength + sizeLength
    if (id === 0x18538067) { // Segment: descend whatever its size says
      inSegment = true
      position = dataStart
      continue
    }
    if (inSegment && id === 0x1f43b675) offsets.push(position)
    position = dataStart + size
  }
  return offsets
}

/** Independent whole-file walk: offsets of the top-level boxes of a type. */
function boxOffsets (bytes: Buffer, type: string): number[] {
  const offsets: number[] = []
  for (let position = 0; position + 8 <= bytes.length; position += bytes.readUInt32BE(position)) {
    if (bytes.toString('latin1', position + 4, position + 8) === type) offsets.push(position)
  }
  return offsets
}

interface Packet { pos: number, key: boolean }

async function packets (path: string): Promise<Packet[]> {
  const stdout = await ffprobe(['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pos,flags', '-of', 'csv=p=0', path])
  return stdout.trim().split('\n').map((line) => {
    const [pos, flags] = line.split(',')
    return { pos: Number(pos), key: flags!.startsWith('K') }
  })
}

/** Whether each segment's first packet (by file position) is a keyframe, per ffprobe. */
function expectedKeyframes (offsets: number[], all: Packet[], fileLength: number): boolean[] {
  return offsets.map((offset, i) => {
    const end = offsets[i + 1] ?? fileLength
    const first = all.find((packet) => packet.pos >= offset && packet.pos < end)
    return first?.key ?? false
  })
}

/** An EBML element with an 8-byte size (unknown: all ones). */
function ebml (id: number, ...children: Array<Buffer | undefined>): Buffer {
  const idBytes = Buffer.from(id.toString(16).padStart(2, '0').replace(/^(.(..)*)$/, '0$1'), 'hex')
  const body = Buffer.concat(children.filter((child) => child !== undefined))
  const size = Buffer.alloc(8)
  size.writeBigUInt64BE(BigInt(body.length) | (1n << 56n))
  return Buffer.concat([idBytes, size, body])
}
const UNKNOWN_SIZE = Buffer.from('01ffffffffffffff', 'hex')

// ---------------------------------------------------------------- WebM

t.test('WebM: the same events whole, in random chunks and byte by byte', async (t) => {
  const whole = scan(new WebmScanner(), [webm])
  t.equal(whole.scanner.state, 'media')
  t.equal(whole.scanner.offset, webm.length)
  for (const seed of [1, 2, 3, 4, 5]) {
    t.same(scan(new WebmScanner(), randomChunks(webm, seed)).events, whole.events, `random chunks, seed ${seed}`)
    t.same(scan(new WebmScanner(), randomChunks(webm, seed, 16)).events, whole.events, `small chunks, seed ${seed}`)
  }
  const byByte = scan(new WebmScanner(), bytewise(webm))
  t.same(byByte.events, whole.events, 'byte by byte')
  t.ok(byByte.maxRetained < 1024, `retains ${byByte.maxRetained} bytes at most (the init segment and a header)`)
  t.equal(whole.events.filter((event) => event.type === 'opaque').length, 0)
})

t.test('WebM: the init segment is the prefix up to the first Cluster, segments are the Clusters', async (t) => {
  const { events } = scan(new WebmScanner(), randomChunks(webm, 7))
  const offsets = clusterOffsets(webm)
  t.ok(offsets.length >= 4, `${offsets.length} clusters`)
  t.same(initOf(events), webm.subarray(0, offsets[0]), 'exact init bytes')
  t.equal(events[0]?.type, 'init', 'init comes first')
  t.same(segments(events).map((segment) => segment.offset), offsets)
  for (const offset of offsets) t.equal(webm.readUInt32BE(offset), 0x1f43b675, `Cluster ID at ${offset}`)

  const expected = expectedKeyframes(offsets, await packets(ffmpeg.pathOf('out.webm')), webm.length)
  t.same(segments(events).map((segment) => segment.keyframe), expected, 'keyframes as ffprobe says')
  t.equal(expected[0], true, 'the first cluster starts on a keyframe')
  t.ok(expected.every(Boolean), 'ffmpeg -live starts a cluster at every keyframe (every 25 frames)')
})

t.test('WebM: clusters that start mid-group are reported as not keyframes', async (t) => {
  const { events } = scan(new WebmScanner(), randomChunks(webmSplit, 11))
  const offsets = clusterOffsets(webmSplit)
  const found = segments(events)
  t.same(found.map((segment) => segment.offset), offsets)
  const expected = expectedKeyframes(offsets, await packets(ffmpeg.pathOf('split.webm')), webmSplit.length)
  t.same(found.map((segment) => segment.keyframe), expected, 'keyframes as ffprobe says')
  t.ok(expected.includes(false) && expected[0] === true, 'both kinds occur')
})

t.test('WebM: init plus the bytes from a keyframe Cluster to the end decode without an error', async (t) => {
  const { events } = scan(new WebmScanner(), randomChunks(webm, 13))
  const init = initOf(events)!
  const keyframes = segments(events).filter((segment) => segment.keyframe)
  t.ok(keyframes.length >= 3)
  const from = keyframes[2]!.offset
  const result = await decode(Buffer.concat([init, webm.subarray(from)]))
  t.equal(result.errors, '', 'no error output')
  t.equal(result.code, 0)
  const all = await packets(ffmpeg.pathOf('out.webm'))
  t.equal(result.frames, all.filter((packet) => packet.pos >= from).length, 'every frame after the cut decodes')
})

t.test('WebM: Segment and Clusters of 8-byte unknown size (as MediaRecorder writes) are walked at the right offsets', async (t) => {
  // ffmpeg -live writes the Segment with the 8-byte unknown size but Clusters with their sizes:
  // rewrite each Cluster's size field to 01 FF FF FF FF FF FF FF.
  t.same(webm.subarray(webm.indexOf(Buffer.from('18538067', 'hex')) + 4).subarray(0, 8), UNKNOWN_SIZE, 'ffmpeg wrote an unknown-size Segment')
  const offsets = clusterOffsets(webm)
  const parts: Buffer[] = [webm.subarray(0, offsets[0])]
  const rewritten: number[] = []
  let length = offsets[0]!
  offsets.forEach((offset, i) => {
    const sizeLength = vintLength(webm[offset + 4]!)
    const body = webm.subarray(offset + 4 + sizeLength, offsets[i + 1] ?? webm.length)
    rewritten.push(length)
    parts.push(webm.subarray(offset, offset + 4), UNKNOWN_SIZE, body)
    length += 4 + 8 + body.length
  })
  const stream = Buffer.concat(parts)

  // Like MediaRecorder's chunks: each ends with the first byte of the next Cluster's ID.
  const recorderLike = cutAt(stream, rewritten.map((offset) => offset + 1))
  for (const chunks of [recorderLike, randomChunks(stream, 17), bytewise(stream)]) {
    const { events, scanner } = scan(new WebmScanner(), chunks)
    t.equal(scanner.state, 'media')
    t.same(initOf(events), stream.subarray(0, rewritten[0]))
    t.same(segments(events), rewritten.map((offset) => ({ offset, keyframe: true })), 'every cluster, at its Cluster ID')
  }
  // A cluster is reported once its first video block tells whether it is a keyframe.
  const scanner = new WebmScanner()
  scanner.push(stream)
  t.same(segments(scanner.push(Buffer.concat([Buffer.from('1f43b675', 'hex'), UNKNOWN_SIZE, Buffer.from('e78100', 'hex')]))), [])
  t.same(segments(scanner.push(Buffer.from('a3858100000000', 'hex'))), [{ offset: stream.length, keyframe: false }])

  const from = rewritten[1]!
  const result = await decode(Buffer.concat([stream.subarray(0, rewritten[0]), stream.subarray(from)]))
  t.equal(result.errors, '', 'the unknown-size cut decodes without an error')
  t.ok(result.frames > 0)
})

t.test('WebM: the first video block decides, SimpleBlock flag or BlockGroup without ReferenceBlock', async (t) => {
  const header = ebml(0x1a45dfa3, ebml(0x4282, Buffer.from('webm')))
  const track = (number: number, type: number): Buffer => ebml(0xae, ebml(0xd7, Buffer.from([number])), ebml(0x83, Buffer.from([type])))
  const tracks = ebml(0x1654ae6b, track(1, 2), track(2, 1)) // 1 audio, 2 video
  const simple = (trackNumber: number, flags: number): Buffer => ebml(0xa3, Buffer.from([0x80 | trackNumber, 0, 0, flags, 1, 2, 3]))
  const group = (trackNumber: number, referenced: boolean): Buffer =>
    ebml(0xa0, ebml(0xa1, Buffer.from([0x80 | trackNumber, 0, 0, 0, 9, 9])), referenced ? ebml(0xfb, Buffer.from([0xff])) : undefined)
  const cluster = (...blocks: Buffer[]): Buffer => Buffer.concat([Buffer.from('1f43b675', 'hex'), UNKNOWN_SIZE, ebml(0xe7, Buffer.from([0])), ...blocks])
  const clusters = [
    cluster(simple(1, 0x80), simple(2, 0x80)), // audio key first, then a video key
    cluster(simple(1, 0x80), simple(2, 0x00)), // audio key, video delta
    cluster(group(2, false), simple(2, 0)), // grouped video without reference: key
    cluster(group(1, false), group(2, true)), // grouped audio, then grouped video with reference: delta
    cluster(simple(1, 0x80)), // no video at all: not a keyframe
  ]
  const segmentHeader = Buffer.concat([Buffer.from('18538067', 'hex'), UNKNOWN_SIZE])
  const init = Buffer.concat([header, segmentHeader, ebml(0x1549a966, ebml(0x2ad7b1, Buffer.from([0x0f, 0x42, 0x40]))), tracks])
  const stream = Buffer.concat([init, ...clusters, ebml(0x1254c367)]) // Tags end the last cluster
  let offset = init.length
  const offsets = clusters.map((bytes) => { const at = offset; offset += bytes.length; return at })
  for (const chunks of [[stream], bytewise(stream), randomChunks(stream, 19, 7)]) {
    const { events, scanner } = scan(new WebmScanner(), chunks)
    t.same(initOf(events), init)
    t.same(segments(events), [true, false, true, false, false].map((keyframe, i) => ({ offset: offsets[i], keyframe })))
    t.equal(scanner.state, 'media')
  }
})

t.test('WebM: an init segment over the cap and malformed headers make the stream opaque', async (t) => {
  const small = new WebmScanner({ maxInitBytes: 100 })
  const events = small.push(webm)
  t.same(events.map((event) => event.type), ['opaque'])
  t.equal(small.state, 'opaque')
  t.equal(small.retainedBytes, 0)
  t.same(small.push(webm), [], 'nothing more once opaque')
  t.equal(small.offset, 2 * webm.length, 'still counts the bytes')

  const notEbml = new WebmScanner()
  t.match(notEbml.push(Buffer.from('{"json":true}')), [{ type: 'opaque', reason: 'no EBML header' }])
  const badId = new WebmScanner()
  t.match(badId.push(Buffer.concat([webm.subarray(0, clusterOffsets(webm)[0]), Buffer.from([0x00, 0x81])])), [{ type: 'opaque', reason: 'invalid element ID' }])
  const second = new WebmScanner()
  t.match(second.push(Buffer.concat([webm, webm])).map((event) => event.type).at(-1), 'opaque', 'a second EBML stream is not followed')
})

// ---------------------------------------------------------------- MP4

t.test('fMP4: the same events whole, in random chunks and byte by byte', async (t) => {
  for (const bytes of [mp4, mp4Short]) {
    const whole = scan(new Mp4Scanner(), [bytes])
    t.equal(whole.scanner.state, 'media')
    for (const seed of [1, 2, 3, 4, 5]) {
      t.same(scan(new Mp4Scanner(), randomChunks(bytes, seed)).events, whole.events, `random chunks, seed ${seed}`)
      t.same(scan(new Mp4Scanner(), randomChunks(bytes, seed, 16)).events, whole.events, `small chunks, seed ${seed}`)
    }
    const byByte = scan(new Mp4Scanner(), bytewise(bytes))
    t.same(byByte.events, whole.events, 'byte by byte')
    t.ok(byByte.maxRetained < 2048, `retains ${byByte.maxRetained} bytes at most`)
  }
})

t.test('fMP4: the init segment is ftyp+moov, segments are the moof boxes with ffprobe\'s keyframes', async (t) => {
  for (const [bytes, name] of [[mp4, 'out.mp4'], [mp4Short, 'short.mp4']] as const) {
    const { events } = scan(new Mp4Scanner(), randomChunks(bytes, 23))
    const moofs = boxOffsets(bytes, 'moof')
    t.same(boxOffsets(bytes, 'ftyp'), [0])
    t.same(boxOffsets(bytes, 'moov'), [bytes.readUInt32BE(0)], 'moov right after ftyp')
    t.equal(boxOffsets(bytes, 'moov')[0]! + bytes.readUInt32BE(boxOffsets(bytes, 'moov')[0]!), moofs[0], 'the first moof right after moov')
    t.same(initOf(events), bytes.subarray(0, moofs[0]), `${name}: exact init bytes`)
    t.same(segments(events).map((segment) => segment.offset), moofs, `${name}: one segment per moof`)
    const expected = expectedKeyframes(moofs, await packets(ffmpeg.pathOf(name)), bytes.length)
    t.same(segments(events).map((segment) => segment.keyframe), expected, `${name}: keyframes as ffprobe says`)
    t.equal(expected[0], true, `${name}: the first fragment starts on a keyframe`)
    const keyframes = segments(events).filter((segment) => segment.keyframe).length
    t.ok(keyframes >= 4, `${name}: ${keyframes} keyframe fragments in 4 s at -g 25`)
    if (name === 'short.mp4') t.ok(expected.includes(false), 'short fragments include ones that start mid-group')
  }
})

t.test('fMP4: init plus the bytes from a keyframe moof to the end decode without an error', async (t) => {
  const { events } = scan(new Mp4Scanner(), randomChunks(mp4Short, 29))
  const init = initOf(events)!
  const keyframes = segments(events).filter((segment) => segment.keyframe)
  const from = keyframes[2]!.offset
  const result = await decode(Buffer.concat([init, mp4Short.subarray(from)]))
  t.equal(result.errors, '', 'no error output')
  t.equal(result.code, 0)
  const all = await packets(ffmpeg.pathOf('short.mp4'))
  t.equal(result.frames, all.filter((packet) => packet.pos >= from).length, 'every frame after the cut decodes')
})

t.test('fMP4: 64-bit box sizes, styp/sidx/free between fragments and a last box of size 0', async (t) => {
  const moofs = boxOffsets(mp4, 'moof')
  const mdats = boxOffsets(mp4, 'mdat')
  const styp = Buffer.concat([Buffer.from('00000010', 'hex'), Buffer.from('stypmsdh'), Buffer.alloc(4), Buffer.from('00000008', 'hex'), Buffer.from('free')])
  const sidx = Buffer.concat([Buffer.from('00000014', 'hex'), Buffer.from('sidx'), Buffer.alloc(12)])
  const parts: Buffer[] = [mp4.subarray(0, moofs[0])]
  const expected: number[] = []
  let length = moofs[0]!
  moofs.forEach((moof, i) => {
    const mdat = mdats[i]!
    const end = moofs[i + 1] ?? mp4.length
    parts.push(styp, sidx)
    length += styp.length + sidx.length
    expected.push(length)
    const moofBytes = mp4.subarray(moof, mdat)
    const body = mp4.subarray(mdat + 8, end)
    let mdatHeader: Buffer
    if (i === moofs.length - 1) {
      mdatHeader = Buffer.concat([Buffer.alloc(4), Buffer.from('mdat')]) // size 0: to the end of the stream
    } else {
      mdatHeader = Buffer.alloc(16) // size 1: 64-bit largesize follows the type
      mdatHeader.writeUInt32BE(1, 0)
      mdatHeader.write('mdat', 4, 'latin1')
      mdatHeader.writeBigUInt64BE(BigInt(16 + body.length), 8)
    }
    parts.push(moofBytes, mdatHeader, body)
    length += moofBytes.length + mdatHeader.length + body.length
  })
  const stream = Buffer.concat(parts)
  for (const chunks of [[stream], bytewise(stream), randomChunks(stream, 31, 100)]) {
    const { events, scanner } = scan(new Mp4Scanner(), chunks)
    t.same(initOf(events), mp4.subarray(0, moofs[0]), 'styp after moov is not part of the init segment')
    t.same(segments(events), expected.map((offset) => ({ offset, keyframe: true })))
    t.equal(scanner.state, 'media', 'the box of size 0 runs to the end')
  }
})

t.test('fMP4: no ftyp, media before moov, an overlong init segment or a box smaller than its header make the stream opaque', async (t) => {
  const moofs = boxOffsets(mp4, 'moof')
  const noFtyp = new Mp4Scanner()
  t.match(noFtyp.push(mp4.subarray(moofs[0])), [{ type: 'opaque', offset: 7, reason: 'no ftyp box' }])
  const noMoov = new Mp4Scanner()
  t.match(noMoov.push(Buffer.concat([mp4.subarray(0, 28), mp4.subarray(moofs[0])])), [{ type: 'opaque', reason: 'moof box before moov' }])
  const small = new Mp4Scanner({ maxInitBytes: 500 })
  t.same(small.push(mp4).map((event) => event.type), ['opaque'])
  t.equal(small.retainedBytes, 0)
  const tiny = new Mp4Scanner()
  t.match(tiny.push(Buffer.concat([mp4.subarray(0, moofs[0]), Buffer.from('00000004', 'hex'), Buffer.from('moof')])).at(-1), { type: 'opaque', reason: 'box smaller than its header' })
})

// ---------------------------------------------------------------- fuzz

/** Feeds `bytes` in random chunks, checking the bound after every push; returns the events. */
function fuzzScan (t: Test, make: () => ContainerScanner, bytes: Buffer, seed: number, cap: number): ScanEvent[] {
  const scanner = make()
  const events: ScanEvent[] = []
  let overCap = 0
  for (const chunk of randomChunks(bytes, seed, 2000)) {
    events.push(...scanner.push(chunk))
    if (scanner.retainedBytes > cap + 16) overCap++
  }
  t.equal(overCap, 0, `retained bytes stay under ${cap} + a header`)
  t.ok(['init', 'media', 'opaque'].includes(scanner.state))
  t.equal(scanner.offset, bytes.length)
  const opaque = events.filter((event) => event.type === 'opaque')
  t.ok(opaque.length <= 1 && (opaque.length === 1) === (scanner.state === 'opaque'), 'opaque is reported once, and only when the state is opaque')
  return events
}

type Make = () => ContainerScanner
const CAP = 4096
const makers: Array<[string, Make, Buffer]> = [
  ['webm', () => new WebmScanner({ maxInitBytes: CAP }), webm],
  ['mp4', () => new Mp4Scanner({ maxInitBytes: CAP }), mp4Short],
]

t.test('fuzz: random bytes, with and without a valid start, never throw and keep memory bounded', async (t) => {
  const random = prng(41)
  for (const [name, make, bytes] of makers) {
    for (let round = 0; round < 60; round++) {
      const noise = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 30_000) }, () => Math.floor(random() * 256)))
      const prefix = bytes.subarray(0, Math.floor(random() * 64))
      fuzzScan(t, make, noise, round, CAP)
      fuzzScan(t, make, Buffer.concat([prefix, noise]), round, CAP)
    }
    // A header announcing an element just under the cap, then noise forever.
    const ebmlStart = Buffer.from('1a45dfa3' + '01ffffffffffffff', 'hex')
    fuzzScan(t, make, Buffer.concat([ebmlStart, Buffer.alloc(200_000, 0x42)]), 1, CAP)
    t.pass(`${name} survived`)
  }
})

t.test('fuzz: a truncated stream yields a prefix of the whole stream\'s events', async (t) => {
  const random = prng(43)
  for (const [, make, bytes] of makers) {
    const all = scan(make(), [bytes]).events
    for (let round = 0; round < 40; round++) {
      const cut = Math.floor(random() * bytes.length)
      const events = fuzzScan(t, make, bytes.subarray(0, cut), round, CAP)
      t.same(events, all.slice(0, events.length), `cut at ${cut}`)
    }
  }
})

t.test('fuzz: streams with flipped bytes never throw, stay bounded and end in a defined state', async (t) => {
  const random = prng(47)
  const states = new Map<string, number>()
  for (const [name, make, bytes] of makers) {
    for (let round = 0; round < 150; round++) {
      const mutated = Buffer.from(bytes)
      const flips = 1 + Math.floor(random() * 20)
      // Mostly in the headers' region, where a flip changes the structure.
      for (let i = 0; i < flips; i++) {
        const at = random() < 0.5 ? Math.floor(random() * 1200) : Math.floor(random() * mutated.length)
        mutated[at] = mutated[at]! ^ (1 << Math.floor(random() * 8))
      }
      const scanner = make()
      fuzzScan(t, () => scanner, mutated, round, CAP)
      const key = `${name}:${scanner.state}`
      states.set(key, (states.get(key) ?? 0) + 1)
    }
  }
  t.comment(JSON.stringify(Object.fromEntries(states)))
  t.ok([...states.keys()].some((key) => key.endsWith('opaque')), 'some mutations are detected as malformed')
})
