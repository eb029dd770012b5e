import t from 'tap'
import { webmBlockHeader, webmInit, webmKeyClusterStart } from '@streaming-service/testing'
import { CacheBudget, createScanner, GopCache, type Evictable } from '../src/media/index.js'
import { decode, mediaMaker, prng, split } from './media-helper.js'

// SPEC §10: the late-join cache is bounded in memory, not only in payload
// bytes, and RELAY_CACHE_BUDGET bounds the sum over a relay's sessions: past
// it the largest cache is dropped, and its late joiners wait for the next
// keyframe group.

const ffmpeg = await mediaMaker(t, 'media-cache-budget-', '640x480')
const VP8 = ['-c:v', 'libvpx', '-deadline', 'realtime', '-g', '25', '-f', 'webm', '-live', '1']
/** Noise does not compress: groups of ~250 KB, against ~30 KB for the light stream. */
const heavy = await ffmpeg('heavy.webm', ['-vf', 'noise=alls=30:allf=t+u', '-b:v', '2M', ...VP8])
const light = await ffmpeg('light.webm', ['-b:v', '200k', ...VP8])

/** Messages of 1 to `max` bytes, each a copy (as a socket delivers them). */
function messagesOf (bytes: Buffer, seed: number, max = 20_000): Buffer[] {
  return split(bytes, prng(seed), max).map((message) => Buffer.from(message))
}

/** The most bytes between two keyframe Clusters of a stream (or to its end). */
function largestGroup (bytes: Buffer): number {
  const keyframes = createScanner('webm').push(bytes).flatMap((event) => event.type === 'segment' && event.keyframe ? [event.offset] : [])
  return Math.max(...keyframes.map((offset, i) => (keyframes[i + 1] ?? bytes.length) - offset))
}

class Recorded implements Evictable {
  evicted = 0
  evict (): void { this.evicted++ }
}

t.test('CacheBudget: past the limit the caches holding the most are evicted, until the sum fits', async (t) => {
  const freed: number[] = []
  const budget = new CacheBudget(100, { onEvict: (bytes) => freed.push(bytes) })
  const [a, b, c] = [new Recorded(), new Recorded(), new Recorded()]
  budget.hold(a, 40)
  budget.hold(b, 30)
  budget.hold(c, 20)
  t.equal(budget.heldBytes, 90)
  t.same([a.evicted, b.evicted, c.evicted], [0, 0, 0], 'within the limit: nothing evicted')
  budget.hold(c, 70) // 140: c is now the largest
  t.same([a.evicted, b.evicted, c.evicted], [0, 0, 1], 'the largest goes first, even the one that just grew')
  t.equal(budget.heldBytes, 70)
  budget.hold(b, 95) // 135: b (95) is evicted; a (40) alone fits
  t.same([a.evicted, b.evicted, c.evicted], [0, 1, 1])
  t.same(freed, [70, 95], 'each eviction reports the bytes it freed')
  t.equal(budget.caches, 1)
  budget.hold(a, 0)
  t.equal(budget.caches, 0, 'a cache holding nothing is forgotten')
  t.equal(budget.heldBytes, 0)
  t.throws(() => new CacheBudget(0), RangeError, 'a budget must be positive')
})

t.test('GopCache: never holds more than maxBytes, not even one message past it, and a message larger than the cap is not held', async (t) => {
  const cap = 64 * 1024
  const cache = new GopCache({ maxBytes: cap })
  cache.push(Buffer.concat([webmInit(), webmKeyClusterStart(), webmBlockHeader(cap * 4)]), true)
  t.not(cache.snapshot(), null, 'a keyframe group exists')
  let over = 0
  for (const message of messagesOf(Buffer.alloc(cap * 4, 1), 3, 9000)) {
    cache.push(message, true)
    if (cache.retainedBytes > cap) over++
  }
  t.equal(over, 0, `retainedBytes within ${cap} after every message`)
  t.equal(cache.snapshot(), null, 'the group outgrew the cap: no snapshot until the next keyframe')
  cache.push(webmKeyClusterStart(), true)
  t.ok(Buffer.concat(cache.snapshot()!.slice(1)).equals(webmKeyClusterStart()), 'the next keyframe Cluster is a group again')
  cache.push(Buffer.concat([webmBlockHeader(cap), Buffer.alloc(cap, 1)]), true)
  t.equal(cache.retainedBytes, 0, 'a message larger than the cap is not held')
  t.equal(cache.snapshot(), null)
})

t.test('GopCache: small messages are coalesced, so a keyframe block in one-byte messages costs about its size', async (t) => {
  const cache = new GopCache()
  const count = 200_000
  const start = Buffer.concat([webmInit(), webmKeyClusterStart(), webmBlockHeader(count)])
  cache.push(start, true)
  for (let i = 0; i < count; i++) cache.push(Buffer.from([i & 0xff]), true)
  t.ok(cache.retainedBytes < count + 32 * 1024, `${cache.retainedBytes} bytes held for ${count} one-byte messages`)
  t.ok(cache.heldBuffers <= Math.ceil(count / (12 * 1024)) + 2, `in ${cache.heldBuffers} buffers`)
  const group = Buffer.concat(cache.snapshot()!.slice(1))
  t.equal(group.length, start.length - webmInit().length + count, 'the snapshot is the whole group')
  t.ok(group.subarray(start.length - webmInit().length).equals(Buffer.from(Array.from({ length: count }, (_, i) => i & 0xff))), 'byte for byte')
})

t.test('a shared budget: the heaviest stream loses its cache first; its late joiners then start at its next keyframe, and that decodes', async (t) => {
  const heavyMessages = messagesOf(heavy, 5)
  const lightMessages = messagesOf(light, 6)
  let evictions = 0
  // Room for the light stream's largest group and half the heavy one's: the light one is never the largest when the sum is over.
  t.ok(largestGroup(heavy) > 4 * largestGroup(light), `groups of up to ${largestGroup(heavy)} and ${largestGroup(light)} bytes`)
  const budget = new CacheBudget(largestGroup(light) + largestGroup(heavy) / 2, { onEvict: () => { evictions++ } })
  const heavyCache = new GopCache({ budget })
  const lightCache = new GopCache({ budget })
  let over = 0
  let lightLost = 0
  let heavyPushed = 0
  let resumed: { at: number, snapshot: Buffer[] } | undefined
  let evictedAt: number | undefined
  for (let i = 0; i < Math.max(heavyMessages.length, lightMessages.length); i++) {
    const lightMessage = lightMessages[i]
    if (lightMessage !== undefined) {
      const hadGroup = lightCache.snapshot() !== null
      lightCache.push(lightMessage, true)
      if (hadGroup && lightCache.snapshot() === null) lightLost++
    }
    const heavyMessage = heavyMessages[i]
    if (heavyMessage === undefined) continue
    const hadGroup = heavyCache.snapshot() !== null
    heavyCache.push(heavyMessage, true)
    heavyPushed++
    if (budget.heldBytes > budget.limit) over++
    if (hadGroup && heavyCache.snapshot() === null) evictedAt ??= heavyPushed
    if (evictedAt !== undefined && resumed === undefined && heavyCache.snapshot() !== null) resumed = { at: heavyPushed, snapshot: heavyCache.snapshot()! }
  }
  t.equal(over, 0, 'the caches together never held more than the budget')
  t.ok(evictions > 0 && evictedAt !== undefined, `the heavy stream's cache was evicted (${evictions} evictions)`)
  t.equal(lightLost, 0, 'the light stream kept its group all along')
  t.ok(resumed !== undefined, 'the heavy stream had a group again from its next keyframe on')
  const joined = Buffer.concat([...resumed!.snapshot, ...heavyMessages.slice(resumed!.at)])
  t.ok(joined.subarray(resumed!.snapshot[0]!.length).equals(heavy.subarray(heavy.length - (joined.length - resumed!.snapshot[0]!.length))), 'the joiner gets the stream from a keyframe Cluster to its end')
  const decoded = await decode(joined)
  t.equal(decoded.errors, '', 'which decodes without an error')
  t.ok(decoded.frames > 0)
  heavyCache.reset()
  lightCache.reset()
  t.equal(budget.heldBytes, 0, 'reset caches hold nothing against the budget')
})
