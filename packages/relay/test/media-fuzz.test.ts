import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import {
  ebmlElement, mp4Box, mp4FreeFlood, mp4Init, mp4KeyFragment, mp4TinyFragments, webmBlockHeader, webmInit, webmKeyClusterStart, webmTinyClusters, webmVoidFlood,
} from '@streaming-service/testing'
import {
  CacheBudget, GopCache, Mp4Scanner, SCAN_LIMITS, WebmScanner, type ContainerFormat, type ContainerScanner, type ScanEvent, type ScannerOptions,
} from '../src/media/index.js'
import { mediaMaker, prng, split } from './media-helper.js'

// SPEC §10: every byte from a client is untrusted, a publisher's media too.
// Generated hostile inputs go through both scanners and the late-join cache:
// none may throw (a scanner "failure" would be a bug), the result may not
// depend on how the stream was split into messages, the work per message is
// bounded (timed against scanning as many bytes of a real stream, in this
// process), and so is the memory held. FUZZ_SEED=<n> replays a run.

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
t.comment(`FUZZ_SEED=${SEED}`)
const at = (what: string): string => `${what} (FUZZ_SEED=${SEED})`

const MB = 1024 * 1024
const ffmpeg = await mediaMaker(t, 'media-fuzz-', '160x120')
const AV = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000']
/** Small streams with audio and video, for truncation at every offset. */
const small: Record<ContainerFormat, Buffer> = {
  webm: await ffmpeg('small.webm', [...AV, '-t', '2', '-c:v', 'libvpx', '-deadline', 'realtime', '-g', '25', '-c:a', 'libopus', '-f', 'webm', '-live', '1']),
  mp4: await ffmpeg('small.mp4', [...AV, '-t', '2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '25', '-c:a', 'aac',
    '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '200000']),
}
/** Denser streams (60 fps; a fragment per frame), for "legit streams are untouched" and the timing reference. */
const dense: Record<ContainerFormat, Buffer> = {
  webm: await ffmpeg('dense.webm', [...AV, '-t', '4', '-r', '60', '-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '1M', '-g', '10', '-c:a', 'libopus', '-f', 'webm', '-live', '1']),
  mp4: await ffmpeg('dense.mp4', [...AV, '-t', '4', '-r', '60', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-b:v', '1M', '-g', '60', '-c:a', 'aac',
    '-f', 'mp4', '-movflags', 'frag_every_frame+empty_moov+default_base_moof']),
}
const STREAM_SECONDS = 4

const scanners: Record<ContainerFormat, (options?: ScannerOptions) => ContainerScanner> = {
  webm: (options) => new WebmScanner(options),
  mp4: (options) => new Mp4Scanner(options),
}

/**
 * Limits that count over the whole stream (a frozen clock never refills the
 * per-second buckets; no per-message limit): where a stream is stopped then
 * cannot depend on how it was split into messages.
 */
const WHOLE_STREAM: ScannerOptions = { limits: { readsPerMessage: 2 ** 29, segmentsPerMessage: 2 ** 29 }, clock: () => 0 }
const LIFTED: ScannerOptions = { limits: { readsPerMessage: 2 ** 29, readsPerSecond: 2 ** 29, segmentsPerMessage: 2 ** 29, segmentsPerSecond: 2 ** 29 } }

interface Scan { events: ScanEvent[], scanner: ContainerScanner, maxRetained: number }

function scan (scanner: ContainerScanner, messages: Buffer[]): Scan {
  const events: ScanEvent[] = []
  let maxRetained = 0
  for (const message of messages) {
    for (const event of scanner.push(message)) events.push(event)
    maxRetained = Math.max(maxRetained, scanner.retainedBytes)
  }
  return { events, scanner, maxRetained }
}

const failures = (events: ScanEvent[]): ScanEvent[] => events.filter((event) => event.type === 'opaque' && event.reason.startsWith('scanner failure'))
const opaqueOf = (events: ScanEvent[]) => events.find((event) => event.type === 'opaque') as Extract<ScanEvent, { type: 'opaque' }> | undefined
const segmentCount = (events: ScanEvent[]): number => events.filter((event) => event.type === 'segment').length

/** Checks what every scan must satisfy, and that `splits` more random splits give the same events. */
function checkSplits (tt: Test, name: string, format: ContainerFormat, bytes: Buffer, options: ScannerOptions, random: () => number, splits = 3): Scan {
  const whole = scan(scanners[format](options), [bytes])
  tt.same(failures(whole.events), [], at(`${name}: no scanner failure`))
  tt.equal(whole.scanner.offset, bytes.length, at(`${name}: every byte counted`))
  let differing = 0
  let maxRetained = whole.maxRetained
  for (let i = 0; i < splits; i++) {
    // One-byte messages only for inputs up to 1 MB (millions of pushes would only time the test's own loop).
    const sizes = bytes.length <= MB ? [1, 16, 1500, 70_000] : [512, 1500, 70_000]
    const max = sizes[Math.floor(random() * sizes.length)]!
    const parts = scan(scanners[format](options), split(bytes, random, max))
    if (!sameEvents(parts.events, whole.events)) differing++
    maxRetained = Math.max(maxRetained, parts.maxRetained)
  }
  tt.equal(differing, 0, at(`${name}: the same events in ${splits} random splits`))
  tt.ok(maxRetained <= (options.maxInitBytes ?? 1024 * 1024) + 64, at(`${name}: retains ${maxRetained} bytes at most`))
  return whole
}

/** Events compared field by field (init bytes by content). */
function sameEvents (a: ScanEvent[], b: ScanEvent[]): boolean {
  return a.length === b.length && a.every((event, i) => {
    const other = b[i]!
    if (event.type === 'init') return other.type === 'init' && event.bytes.equals(other.bytes)
    return JSON.stringify(event) === JSON.stringify(other)
  })
}

// ---------------------------------------------------------------- legit streams

t.test('real streams are untouched by the limits: the same events as with the limits lifted, in any split, at their real pace', async (t) => {
  const random = prng(SEED)
  for (const format of ['webm', 'mp4'] as const) {
    const bytes = dense[format]
    const reference = scan(scanners[format](LIFTED), [bytes]).events
    t.ok(segmentCount(reference) >= STREAM_SECONDS * 2, `${format}: ${segmentCount(reference)} segments in ${STREAM_SECONDS} s`)
    // The whole stream in one message, 64 KB messages, 200 ms-like messages, tiny ones; the clock at the stream's pace.
    for (const max of [bytes.length, 64 * 1024, Math.ceil(bytes.length / (STREAM_SECONDS * 5)), 64]) {
      let now = 0
      const scanner = scanners[format]({ clock: () => now })
      const events: ScanEvent[] = []
      for (const message of split(bytes, random, max)) {
        now = (scanner.offset / bytes.length) * STREAM_SECONDS * 1000
        events.push(...scanner.push(message))
      }
      t.ok(sameEvents(events, reference), at(`${format}, messages of up to ${max} bytes: the events of the unlimited scan`))
      t.equal(scanner.state, 'media')
    }
  }
})

// ---------------------------------------------------------------- truncation

t.test('a real stream truncated at every offset yields exactly the events the whole stream had produced by then', async (t) => {
  for (const format of ['webm', 'mp4'] as const) {
    const bytes = small[format]
    // Byte by byte: which events each prefix length has produced.
    const reference = scanners[format]()
    const emittedBy: Array<{ event: ScanEvent, length: number }> = []
    for (let i = 0; i < bytes.length; i++) {
      for (const event of reference.push(bytes.subarray(i, i + 1))) emittedBy.push({ event, length: i + 1 })
    }
    t.equal(reference.state, 'media', `${format}: the byte-by-byte scan follows the stream to its end`)
    let bad = 0
    let checked = 0
    for (let length = 0; length <= bytes.length; length++) {
      const prefix = bytes.subarray(0, length)
      const cut = (SEED + length) % 3 // whole, or cut once at a point that moves with the offset
      const messages = cut === 0 ? [prefix] : [prefix.subarray(0, (length * cut) >> 2), prefix.subarray((length * cut) >> 2)]
      const { events, scanner } = scan(scanners[format](), messages)
      const expected = emittedBy.filter((emitted) => emitted.length <= length).map((emitted) => emitted.event)
      if (!sameEvents(events, expected) || scanner.state === 'opaque') bad++
      checked++
    }
    t.equal(bad, 0, at(`${format}: ${checked} truncations, each a prefix of the whole stream's events`))
  }
})

// ---------------------------------------------------------------- random bytes

t.test('random bytes after a valid start never make a scanner fail, and give the same events whatever the split', async (t) => {
  const random = prng(SEED + 1)
  const starts: Record<ContainerFormat, Buffer[]> = {
    webm: [webmInit(), Buffer.concat([webmInit(), webmKeyClusterStart()]), small.webm.subarray(0, 200 + Math.floor(random() * 2000))],
    mp4: [mp4Init(), Buffer.concat([mp4Init(), mp4KeyFragment()]), small.mp4.subarray(0, 200 + Math.floor(random() * 2000))],
  }
  const states: Record<string, number> = {}
  for (const format of ['webm', 'mp4'] as const) {
    for (let round = 0; round < 120; round++) {
      const start = starts[format][round % starts[format].length]!
      const noise = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 40_000) }, () => Math.floor(random() * 256)))
      const whole = checkSplits(t, `${format} round ${round}`, format, Buffer.concat([start, noise]), WHOLE_STREAM, random, 2)
      states[`${format}:${whole.scanner.state}`] = (states[`${format}:${whole.scanner.state}`] ?? 0) + 1
    }
  }
  t.comment(JSON.stringify(states))
})

// ---------------------------------------------------------------- crafted structures

/** A Segment and a Cluster of unknown size, alternating: each closes the one before ("endless nesting"). */
function webmEndlessNesting (bytes: number): Buffer {
  const pair = Buffer.concat([ebmlElement(0x18538067, null), ebmlElement(0x1f43b675, null), Buffer.from('e78100', 'hex'), Buffer.from('a385810000800a', 'hex')])
  return Buffer.concat([webmInit(), ...Array.from({ length: Math.ceil(bytes / pair.length) }, () => pair)])
}

/** moof boxes nested in one another as deep as `depth`, then traf in traf: the walker only enters moof > traf. */
function mp4DeepNesting (depth: number): Buffer {
  let inner = mp4Box('trun', Buffer.from('000000040000000100000000', 'hex'))
  for (let i = 0; i < depth; i++) inner = mp4Box(i % 2 === 0 ? 'traf' : 'moof', inner)
  return Buffer.concat([mp4Init(), mp4Box('moof', inner)])
}

/** 128-byte Void elements (1-byte size). */
function voids (bytes: number): Buffer {
  return Buffer.concat(Array.from({ length: Math.ceil(bytes / 128) }, () => ebmlElement(0xec, Buffer.alloc(126), 1)))
}

/** Known-size BlockGroups nested `depth` deep inside a Cluster. */
function webmDeepNesting (depth: number): Buffer {
  let inner = ebmlElement(0xa1, Buffer.from('8100000000', 'hex'))
  for (let i = 0; i < depth; i++) inner = ebmlElement(0xa0, inner)
  return Buffer.concat([webmInit(), ebmlElement(0x1f43b675, inner)])
}

function largeBox (type: string, size: bigint): Buffer {
  const header = Buffer.alloc(16)
  header.writeUInt32BE(1)
  header.write(type, 4, 'latin1')
  header.writeBigUInt64BE(size, 8)
  return header
}

const cluster = webmKeyClusterStart()
const hostile: Array<{ name: string, format: ContainerFormat, bytes: Buffer, state: 'media' | 'opaque', cause?: 'limit' | 'malformed' }> = [
  { name: 'WebM, 8 MB of 2-byte Void elements', format: 'webm', bytes: webmVoidFlood(8 * MB), state: 'opaque', cause: 'limit' },
  { name: 'WebM, 8 MB of 11-byte keyframe Clusters', format: 'webm', bytes: webmTinyClusters(8 * MB), state: 'opaque', cause: 'limit' },
  { name: 'WebM, 4 MB of Segment/Cluster of unknown size, alternating', format: 'webm', bytes: webmEndlessNesting(4 * MB), state: 'opaque', cause: 'limit' },
  { name: 'fMP4, 8 MB of 8-byte free boxes', format: 'mp4', bytes: mp4FreeFlood(8 * MB), state: 'opaque', cause: 'limit' },
  { name: 'fMP4, 8 MB of keyframe fragments', format: 'mp4', bytes: mp4TinyFragments(8 * MB), state: 'opaque', cause: 'limit' },
  { name: 'WebM, an init segment of Void elements past the bound', format: 'webm', bytes: Buffer.concat([webmInit(), voids(1.5 * MB)]), state: 'opaque', cause: 'limit' },
  { name: 'fMP4, an init segment of free boxes past the bound', format: 'mp4', bytes: Buffer.concat([mp4Box('ftyp', Buffer.alloc(8)), Buffer.alloc(1.5 * MB).fill(mp4Box('free', Buffer.alloc(120)))]), state: 'opaque', cause: 'limit' },
  { name: 'WebM, BlockGroups nested 1000 deep', format: 'webm', bytes: webmDeepNesting(1000), state: 'media' },
  { name: 'fMP4, moof and traf nested 1000 deep', format: 'mp4', bytes: mp4DeepNesting(1000), state: 'media' },
  { name: 'WebM, an element size of 2^56 - 2 (over 2^53)', format: 'webm', bytes: Buffer.concat([webmInit(), cluster, Buffer.from('ec' + '01fffffffffffffe', 'hex')]), state: 'opaque', cause: 'malformed' },
  { name: 'WebM, an element size of 2^53 - 1, then bytes', format: 'webm', bytes: Buffer.concat([webmInit(), cluster, Buffer.from('ec' + '011fffffffffffff', 'hex'), Buffer.alloc(100_000, 0xec)]), state: 'media' },
  { name: 'WebM, a Segment-level element of 2^53 - 1 in the init segment', format: 'webm', bytes: Buffer.concat([webmInit(), Buffer.from('1549a966' + '011fffffffffffff', 'hex')]), state: 'opaque', cause: 'limit' },
  { name: 'fMP4, a largesize of 2^64 - 1', format: 'mp4', bytes: Buffer.concat([mp4Init(), mp4KeyFragment(), largeBox('mdat', 2n ** 64n - 1n)]), state: 'opaque', cause: 'malformed' },
  { name: 'fMP4, a largesize of 2^53 - 1, then bytes', format: 'mp4', bytes: Buffer.concat([mp4Init(), mp4KeyFragment(), largeBox('mdat', 2n ** 53n - 1n), Buffer.alloc(100_000)]), state: 'media' },
  { name: 'fMP4, a 4 GB mdat, then bytes', format: 'mp4', bytes: Buffer.concat([mp4Init(), mp4KeyFragment(), Buffer.from('ffffffff', 'hex'), Buffer.from('mdat'), Buffer.alloc(100_000)]), state: 'media' },
  { name: 'WebM, a Void of unknown size in a Cluster', format: 'webm', bytes: Buffer.concat([webmInit(), cluster, ebmlElement(0xec, null)]), state: 'opaque', cause: 'malformed' },
  { name: 'WebM, Info of unknown size', format: 'webm', bytes: Buffer.concat([webmInit(), ebmlElement(0x1549a966, null)]), state: 'opaque', cause: 'malformed' },
  { name: 'WebM, an EBML header of unknown size', format: 'webm', bytes: Buffer.concat([ebmlElement(0x1a45dfa3, null), Buffer.alloc(100)]), state: 'opaque', cause: 'malformed' },
  { name: 'WebM, a BlockGroup of unknown size', format: 'webm', bytes: Buffer.concat([webmInit(), ebmlElement(0x1f43b675, null), ebmlElement(0xa0, null)]), state: 'opaque', cause: 'malformed' },
  { name: 'WebM, a SimpleBlock of unknown size', format: 'webm', bytes: Buffer.concat([webmInit(), ebmlElement(0x1f43b675, null), ebmlElement(0xa3, null)]), state: 'opaque', cause: 'malformed' },
  { name: 'WebM, unknown-size Segments and Clusters everywhere, then a Void of unknown size', format: 'webm', bytes: Buffer.concat([webmEndlessNesting(100_000), ebmlElement(0xec, null)]), state: 'opaque', cause: 'malformed' },
  { name: 'fMP4, a box of size 0 in the init segment', format: 'mp4', bytes: Buffer.concat([mp4Box('ftyp', Buffer.alloc(8)), Buffer.from('00000000', 'hex'), Buffer.from('moov')]), state: 'opaque', cause: 'malformed' },
  { name: 'fMP4, a box of size 0 inside a moof', format: 'mp4', bytes: Buffer.concat([mp4Init(), mp4Box('moof', Buffer.from('00000000', 'hex'), Buffer.from('traf'))]), state: 'opaque', cause: 'malformed' },
  { name: 'fMP4, a box of size 0 after the init segment (to the end)', format: 'mp4', bytes: Buffer.concat([mp4Init(), mp4KeyFragment(), Buffer.from('00000000', 'hex'), Buffer.from('mdat'), Buffer.alloc(100_000, 1)]), state: 'media' },
]

t.test('crafted structures end in a defined state, for a defined cause, at the same offset whatever the split', async (t) => {
  const random = prng(SEED + 2)
  for (const { name, format, bytes, state, cause } of hostile) {
    const whole = checkSplits(t, name, format, bytes, WHOLE_STREAM, random)
    t.equal(whole.scanner.state, state, at(`${name}: ${state}`))
    if (cause !== undefined) t.equal(opaqueOf(whole.events)?.cause, cause, at(`${name}: stopped for a ${cause} reason ("${opaqueOf(whole.events)?.reason}")`))
  }
})

t.test('with the default limits, one message or a stream of small ones, a flood is stopped within the limits', async (t) => {
  const random = prng(SEED + 3)
  for (const { name, format, bytes, cause } of hostile.filter((input) => input.cause === 'limit')) {
    for (const max of [bytes.length, 16 * 1024, 512]) {
      // All within one second: the per-second limits count from the start.
      const { events, scanner } = scan(scanners[format]({ clock: () => 0 }), split(bytes, random, max))
      const opaque = opaqueOf(events)
      t.equal(opaque?.cause, cause, at(`${name}, messages of up to ${max} bytes: stopped by a limit`))
      t.ok(segmentCount(events) <= SCAN_LIMITS.segmentsPerSecond, at(`${name}: ${segmentCount(events)} segments reported at most`))
      // Each read consumes at least one byte: a stop within the per-second reads is within that many bytes of the start (+ the init segment).
      t.ok(opaque !== undefined && opaque.offset <= 1024 * 1024 + 64 * SCAN_LIMITS.readsPerSecond, at(`${name}: stopped at byte ${opaque?.offset}`))
      t.equal(scanner.retainedBytes, 0, at(`${name}: nothing retained once stopped`))
    }
  }
})

// ---------------------------------------------------------------- bounded work

/** The median time (ms) of `runs` calls of `work` (one call first, not counted: V8 optimizes the walkers as on a relay that has been up a while). */
function medianMs (runs: number, work: () => void): number {
  work()
  const times = Array.from({ length: runs }, () => {
    const started = performance.now()
    work()
    return performance.now() - started
  }).sort((a, b) => a - b)
  return times[Math.floor(runs / 2)]!
}

t.test('work is bounded: any crafted 8 MB message costs less than scanning 8 MB of a real stream', async (t) => {
  const real: Record<ContainerFormat, Buffer[]> = { webm: [], mp4: [] }
  for (const format of ['webm', 'mp4'] as const) {
    // 8 MB of the real stream, scanned from its start again and again in 64 KB messages.
    for (let total = 0; total < 8 * MB; total += dense[format].length) real[format].push(...split(dense[format], () => 1, 64 * 1024))
  }
  for (const { name, format, bytes } of hostile.filter((input) => input.bytes.length >= 4 * MB)) {
    const reference = medianMs(5, () => {
      let scanner = scanners[format]()
      for (const message of real[format]) {
        if (scanner.offset >= dense[format].length) scanner = scanners[format]()
        scanner.push(message)
      }
    })
    const crafted = medianMs(5, () => { scanners[format]().push(bytes) }) * (8 * MB / bytes.length)
    t.ok(crafted < 5 * reference, at(`${name}: ${crafted.toFixed(1)} ms per 8 MB, a real ${format} stream ${reference.toFixed(1)} ms (bound: 5×)`))
  }
})

// ---------------------------------------------------------------- the late-join cache

/** `GopCache.heldBuffers` bound (HeldBytes): a buffer pins at least 512 bytes, a buffer and its neighbour 4608. */
const bufferBound = (bytes: number): number => Math.floor(2 * bytes / 4608) + 1

t.test('GopCache: memory stays within its bounds and every snapshot is exact, whatever the publishers send and however it is split', async (t) => {
  const random = prng(SEED + 4)
  const maxBytes = 256 * 1024
  const keyBlock = (format: ContainerFormat, size: number): Buffer => format === 'webm'
    ? Buffer.concat([webmInit(), webmKeyClusterStart(), webmBlockHeader(size), Buffer.alloc(size, 7)])
    : Buffer.concat([mp4Init(), mp4KeyFragment(), mp4Box('mdat', Buffer.alloc(size, 7))])
  const inputs: Array<{ name: string, bytes: Buffer, max: number }> = [
    ...(['webm', 'mp4'] as const).flatMap((format) => [
      { name: `${format}: a 200 KB keyframe block in one-byte messages`, bytes: keyBlock(format, 200_000), max: 1 },
      { name: `${format}: a 2 MB keyframe block in messages of up to 5000 bytes`, bytes: keyBlock(format, 2 * MB), max: 5000 },
      { name: `${format}: a real stream in messages of up to 3000 bytes`, bytes: dense[format], max: 3000 },
      { name: `${format}: a real stream in random-sized messages`, bytes: dense[format], max: 70_000 },
    ]),
    ...hostile.filter((input) => input.bytes.length >= 4 * MB).map(({ name, bytes }) => ({ name, bytes: bytes.subarray(0, MB), max: 700 })),
  ]
  // All at once, one message each in turn, sharing a budget smaller than what they would hold together.
  let evictions = 0
  const budget = new CacheBudget(3 * maxBytes, { onEvict: () => { evictions++ } })
  const feeds = inputs.map((input) => ({ ...input, messages: split(input.bytes, random, input.max), next: 0, pushed: 0, cache: new GopCache({ maxBytes, budget }) }))
  const problems = new Map<string, string[]>()
  const problem = (name: string, what: string): void => {
    const list = problems.get(name) ?? []
    if (list.length < 5) list.push(what)
    problems.set(name, list)
  }
  let snapshots = 0
  let overBudget = 0
  for (let left = feeds.length; left > 0;) {
    left = 0
    for (const feed of feeds) {
      const message = feed.messages[feed.next++]
      if (message === undefined) continue
      left++
      const { cache } = feed
      cache.push(message, true)
      feed.pushed += message.length
      if (budget.heldBytes > budget.limit) overBudget++
      if (cache.retainedBytes > maxBytes) problem(feed.name, `retains ${cache.retainedBytes} bytes`)
      if (cache.heldBuffers > bufferBound(maxBytes)) problem(feed.name, `holds ${cache.heldBuffers} buffers`)
      // A snapshot copies the group: checked now and then.
      if (random() < 0.01) {
        const snapshot = cache.snapshot()
        if (snapshot === null) continue
        snapshots++
        const group = Buffer.concat(snapshot.slice(1))
        if (!snapshot[0]!.equals(feed.bytes.subarray(0, snapshot[0]!.length))) problem(feed.name, 'a snapshot with another init segment')
        if (!group.equals(feed.bytes.subarray(cache.groupOffset, feed.pushed))) problem(feed.name, `a snapshot that is not the stream from ${cache.groupOffset}`)
      }
    }
  }
  t.same(Object.fromEntries(problems), {}, at(`within ${maxBytes} bytes and ${bufferBound(maxBytes)} buffers each, ${snapshots} exact snapshots`))
  t.equal(overBudget, 0, at(`the budget's sum never over ${budget.limit} bytes`))
  t.ok(evictions > 0, `the budget evicted ${evictions} times`)
  t.ok(snapshots > 10, `${snapshots} snapshots checked`)
  for (const feed of feeds) feed.cache.reset()
  t.equal(budget.caches, 0, 'caches that were reset hold nothing against the budget')
})
