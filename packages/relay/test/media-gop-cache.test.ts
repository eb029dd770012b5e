import t from 'tap'
import { GopCache, Mp4Scanner, WebmScanner, type ContainerScanner } from '../src/media/index.js'
import { decode, mediaMaker, prng } from './media-helper.js'

// SPEC §5 "Late joiners": a late joiner gets the init segment, then the
// publisher's bytes from the last keyframe segment, then the live messages;
// the seam between the cached group and the next live message must be
// byte-exact. The streams are made by ffmpeg at test time and cut into
// MediaRecorder-like messages that never align with clusters or fragments.

const ffmpeg = await mediaMaker(t, 'media-gop-cache-', '640x480')

/** ~1 MB in 4 s: about a hundred 1–20 KB messages. */
const VP8 = ['-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '2M']
const H264 = ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-profile:v', 'baseline', '-b:v', '2M']
const FMP4 = ['-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '200000']
const webm = await ffmpeg('out.webm', [...VP8, '-g', '25', '-f', 'webm', '-live', '1'])
const mp4 = await ffmpeg('out.mp4', [...H264, '-g', '25', ...FMP4])
/** Keyframes at 0 s and 3 s only: the first group outgrows a small cap. */
// (ffmpeg cuts live WebM clusters at 32 KB by default, which can leave the 3 s keyframe mid-cluster: lifted here.)
const webmSparse = await ffmpeg('sparse.webm', [...VP8, '-g', '75', '-cluster_size_limit', '4000000', '-f', 'webm', '-live', '1'])
const mp4Sparse = await ffmpeg('sparse.mp4', [...H264, '-g', '75', ...FMP4])

// ---------------------------------------------------------------- helpers

/** Messages of 1–20 KB, as a publisher sends them. */
function messagesOf (bytes: Buffer, seed: number, min = 1000, max = 20_000): Buffer[] {
  const random = prng(seed)
  const messages: Buffer[] = []
  for (let offset = 0; offset < bytes.length;) {
    const size = min + Math.floor(random() * (max - min + 1))
    // A copy, as a socket would deliver: the cache must not rely on a shared underlying buffer.
    messages.push(Buffer.from(bytes.subarray(offset, offset + size)))
    offset += size
  }
  return messages
}

/** Ground truth from a scanner of its own: after each message, the last keyframe segment's offset seen so far. */
function keyframeOffsets (scanner: ContainerScanner, messages: Buffer[]): { init: Buffer, after: Array<number | undefined> } {
  let init: Buffer | undefined
  let last: number | undefined
  const after = messages.map((message) => {
    for (const event of scanner.push(message)) {
      if (event.type === 'init') init = event.bytes
      if (event.type === 'segment' && event.keyframe) last = event.offset
    }
    return last
  })
  if (init === undefined) throw new Error('no init segment')
  return { init, after }
}

/** The segment a group must start with: a WebM Cluster ID, or an MP4 `moof` box. */
function startsSegment (format: 'webm' | 'mp4', bytes: Buffer): boolean {
  return format === 'webm'
    ? bytes.subarray(0, 4).equals(Buffer.from([0x1f, 0x43, 0xb6, 0x75]))
    : bytes.toString('latin1', 4, 8) === 'moof'
}

const streams = [
  { format: 'webm' as const, bytes: webm, sparse: webmSparse, scanner: () => new WebmScanner() },
  { format: 'mp4' as const, bytes: mp4, sparse: mp4Sparse, scanner: () => new Mp4Scanner() },
]

// ---------------------------------------------------------------- late joiner seam

for (const { format, bytes, scanner } of streams) {
  t.test(`${format}: a late joiner after any message gets init + the group from a keyframe segment, and the live messages continue it byte for byte`, async (t) => {
    const messages = messagesOf(bytes, format === 'webm' ? 11 : 12, 1, 20_000)
    const truth = keyframeOffsets(scanner(), messages)
    const cache = new GopCache()
    const snapshots: Array<Buffer[] | null> = []
    let pushed = 0
    let maxRetainedOverGroup = 0
    for (const [k, message] of messages.entries()) {
      cache.push(message, true)
      pushed += message.length
      const snapshot = cache.snapshot()
      snapshots.push(snapshot)
      const expected = truth.after[k]
      if (expected === undefined) {
        if (snapshot !== null) t.fail(`message ${k}: a snapshot before any keyframe segment was found`)
        continue
      }
      if (snapshot === null) {
        t.fail(`message ${k}: no snapshot although a keyframe segment at ${expected} was found`)
        continue
      }
      if (!snapshot[0]!.equals(truth.init)) t.fail(`message ${k}: the snapshot does not start with the init segment`)
      const group = Buffer.concat(snapshot.slice(1))
      if (!group.equals(bytes.subarray(expected, pushed))) t.fail(`message ${k}: the group is not the stream from ${expected} to ${pushed}`)
      if (!startsSegment(format, group)) t.fail(`message ${k}: the group does not start a segment`)
      // Only the group is held, plus the part of its first message before the keyframe segment.
      maxRetainedOverGroup = Math.max(maxRetainedOverGroup, cache.retainedBytes - group.length)
    }
    t.equal(cache.format, format)
    t.ok(cache.init?.equals(truth.init), 'the exact init segment')
    t.ok(snapshots.filter((snapshot) => snapshot !== null).length > messages.length / 2, 'most joiners get a group')
    t.ok(maxRetainedOverGroup < 20_000, `held beyond the group: at most one message (${maxRetainedOverGroup} bytes)`)
    t.ok(new Set(truth.after.filter((offset) => offset !== undefined)).size >= 4, 'several keyframe segments in 4 s')

    // Late joiners decode from the first byte: cut points spread over the stream.
    const cuts = messages.map((_, k) => k).filter((k) => snapshots[k] !== null)
    const step = Math.max(1, Math.floor(cuts.length / 12))
    let decoded = 0
    for (let i = 0; i < cuts.length; i += step) {
      const k = cuts[i]!
      const joined = Buffer.concat([...snapshots[k]!, ...messages.slice(k + 1)])
      const expected = truth.after[k]!
      t.ok(joined.subarray(truth.init.length).equals(bytes.subarray(expected)), `after message ${k}: init + the stream from ${expected} to the end`)
      const { code, errors, frames } = await decode(joined)
      t.equal(errors, '', `after message ${k}: no decoding error`)
      t.equal(code, 0)
      t.ok(frames > 0, `after message ${k}: ${frames} frames`)
      decoded++
    }
    t.ok(decoded >= 10, `${decoded} late joiners decoded`)
  })
}

t.test('a keyframe segment starting in the middle of a message is cut at its first byte, however the stream is split', async (t) => {
  for (const { format, bytes, scanner } of streams) {
    for (const [seed, min, max] of [[1, 1, 1], [2, 1, 64], [3, 1, 1500]] as const) {
      const messages = messagesOf(bytes, seed, min, max)
      const truth = keyframeOffsets(scanner(), messages)
      const cache = new GopCache()
      // Checked around every keyframe segment found and at ~200 other points (a check copies the group).
      const stride = Math.ceil(messages.length / 200)
      let pushed = 0
      let bad = 0
      let checked = 0
      for (const [k, message] of messages.entries()) {
        cache.push(message, true)
        pushed += message.length
        const expected = truth.after[k]
        if (k % stride !== 0 && expected === truth.after[k - 1] && expected === truth.after[k + 1]) continue
        checked++
        const snapshot = cache.snapshot()
        if (expected === undefined ? snapshot !== null : snapshot === null || !Buffer.concat(snapshot.slice(1)).equals(bytes.subarray(expected, pushed))) bad++
      }
      t.equal(bad, 0, `${format}, messages of ${min}–${max} bytes: ${checked} snapshots byte-exact`)
    }
  }
})

// ---------------------------------------------------------------- bounded memory

for (const { format, sparse, scanner } of streams) {
  t.test(`${format}: a group larger than the cap is dropped until the next keyframe, and memory stays within the cap plus one message`, async (t) => {
    const messages = messagesOf(sparse, 21, 1, 20_000)
    const largest = Math.max(...messages.map((message) => message.length))
    const truth = keyframeOffsets(scanner(), messages)
    const keyframes = [...new Set(truth.after.filter((offset) => offset !== undefined))]
    t.equal(keyframes.length, 2, 'keyframe segments at 0 s and 3 s')
    const [first, second] = keyframes as [number, number]
    // Room for a keyframe and a few messages, far less than 3 s of video.
    const cap = Math.floor((second - first) / 2)
    t.ok(cap > 2 * largest, `cap ${cap} bytes`)

    const cache = new GopCache({ maxBytes: cap })
    let pushed = 0
    let maxRetained = 0
    const states: string[] = []
    for (const [k, message] of messages.entries()) {
      cache.push(message, true)
      pushed += message.length
      maxRetained = Math.max(maxRetained, cache.retainedBytes)
      const snapshot = cache.snapshot()
      const expected = truth.after[k]
      if (snapshot === null) {
        states.push('none')
      } else {
        const group = Buffer.concat(snapshot.slice(1))
        t.ok(group.equals(sparse.subarray(expected, pushed)), `message ${k}: byte-exact group`)
        t.ok(group.length <= cap, `message ${k}: group within the cap`)
        states.push(expected === first ? 'first' : 'second')
      }
    }
    t.ok(maxRetained <= cap + largest, `held at most ${maxRetained} bytes (cap ${cap} + one message ${largest})`)
    // The first group is served until it outgrows the cap, then nothing until the next keyframe.
    const runs = states.filter((state, i) => state !== states[i - 1])
    t.same(runs.slice(runs.indexOf('first')), ['first', 'none', 'second', ...(runs.at(-1) === 'none' ? ['none'] : [])], `states: ${runs.join(' → ')}`)
    const firstSecond = states.indexOf('second')
    t.equal(truth.after[firstSecond], second, 'the group comes back as soon as the next keyframe segment is found')
    t.not(truth.after[firstSecond - 1], second)

    // A joiner arriving as the second group is found decodes from the first byte.
    const joined = Buffer.concat([...snapshotAt(messages, firstSecond, cap), ...messages.slice(firstSecond + 1)])
    t.ok(joined.subarray(cache.init!.length).equals(sparse.subarray(second)), 'init + the stream from the second keyframe segment')
    const { errors, frames } = await decode(joined)
    t.equal(errors, '', 'the second group decodes')
    t.ok(frames > 0)
  })
}

/** A fresh cache's snapshot after `k + 1` messages. */
function snapshotAt (messages: Buffer[], k: number, cap: number): Buffer[] {
  const cache = new GopCache({ maxBytes: cap })
  for (const message of messages.slice(0, k + 1)) cache.push(message, true)
  const snapshot = cache.snapshot()
  if (snapshot === null) throw new Error(`no snapshot after message ${k}`)
  return snapshot
}

// ---------------------------------------------------------------- opaque streams and reset

t.test('JPEG frames, JSON text and unknown bytes are opaque: no snapshot and nothing held', async (t) => {
  const jpeg = new GopCache()
  for (let i = 0; i < 100; i++) jpeg.push(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(5000, i)]), true)
  t.equal(jpeg.format, 'opaque')
  t.equal(jpeg.snapshot(), null)
  t.equal(jpeg.retainedBytes, 0)

  const text = new GopCache()
  text.push(Buffer.from('{"type":"hello"}'), false)
  text.push(webm.subarray(0, 5000), true)
  t.equal(text.format, 'opaque')
  t.equal(text.snapshot(), null)
  t.equal(text.retainedBytes, 0)

  // A text message in the middle of a media stream: relayed as opaque from then on.
  const mixed = new GopCache()
  for (const message of messagesOf(webm, 5)) mixed.push(message, true)
  t.not(mixed.snapshot(), null)
  mixed.push(Buffer.from('chat'), false)
  t.equal(mixed.format, 'opaque')
  t.equal(mixed.snapshot(), null)
  t.equal(mixed.retainedBytes, 0)
  t.equal(mixed.init, undefined)
})

t.test('the format is undecided until the first bytes tell, even when they come one byte at a time', async (t) => {
  const cache = new GopCache()
  t.equal(cache.format, 'undecided')
  cache.push(Buffer.alloc(0), true)
  t.equal(cache.format, 'undecided')
  for (let i = 0; i < 3; i++) {
    cache.push(mp4.subarray(i, i + 1), true)
    t.equal(cache.format, 'undecided', `after ${i + 1} bytes`)
  }
  for (let i = 3; i < 8; i++) cache.push(mp4.subarray(i, i + 1), true)
  t.equal(cache.format, 'mp4')
  cache.push(mp4.subarray(8), true)
  t.not(cache.snapshot(), null)
  t.ok(Buffer.concat(cache.snapshot()!).subarray(cache.init!.length).equals(mp4.subarray(cache.groupOffset)))
})

t.test('reset starts over: a new stream\'s init segment replaces the first, and its groups start from its own offsets', async (t) => {
  const cache = new GopCache()
  for (const message of messagesOf(webm, 7)) cache.push(message, true)
  const webmInit = cache.init
  t.ok(webmInit !== undefined && webm.subarray(0, webmInit.length).equals(webmInit))
  cache.push(Buffer.from('text'), false)
  t.equal(cache.format, 'opaque')

  cache.reset()
  t.equal(cache.format, 'undecided')
  t.equal(cache.init, undefined)
  t.equal(cache.snapshot(), null)
  t.equal(cache.retainedBytes, 0)

  const messages = messagesOf(mp4, 8)
  const k = Math.floor(messages.length * 0.6)
  for (const message of messages.slice(0, k + 1)) cache.push(message, true)
  t.equal(cache.format, 'mp4')
  t.ok(cache.init?.equals(mp4.subarray(0, cache.init.length)), 'the mp4 init segment')
  const joined = Buffer.concat([...cache.snapshot()!, ...messages.slice(k + 1)])
  t.ok(joined.subarray(cache.init!.length).equals(mp4.subarray(cache.groupOffset)))
  const { errors, frames } = await decode(joined)
  t.equal(errors, '', 'decodes after the reset')
  t.ok(frames > 0)
})
