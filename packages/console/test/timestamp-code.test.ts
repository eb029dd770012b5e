import t from 'tap'
import { clockDelta, CODE_BITS, decodeTimestamp, encodeTimestamp, PATTERN_HEIGHT, PATTERN_WIDTH, STRIP, stripSamplePoints } from '../web/timestamp-code.js'

t.test('a timestamp survives encoding and decoding', async (t) => {
  for (const ms of [0, 1, 2 ** 32 - 1, 1_764_000_000_123, Date.now()]) {
    const bits = encodeTimestamp(ms)
    t.equal(bits.length, CODE_BITS)
    t.equal(decodeTimestamp(bits), ms % 2 ** 32, String(ms))
  }
})

t.test('misreads are rejected by the check bits', async (t) => {
  const bits = encodeTimestamp(1_764_000_000_123)
  let accepted = 0
  for (let i = 0; i < CODE_BITS; i++) {
    const flipped = [...bits]
    flipped[i] = !flipped[i]
    if (decodeTimestamp(flipped) !== undefined) accepted++
  }
  t.equal(accepted, 0, 'every single-bit error is caught')
  t.equal(decodeTimestamp(new Array<boolean>(CODE_BITS).fill(false)), undefined, 'a black strip is no timestamp')
  t.equal(decodeTimestamp(bits.slice(1)), undefined)
})

t.test('latency on the wrapping clock', async (t) => {
  t.equal(clockDelta(1_000_500, 1_000_000 % 2 ** 32), 500)
  t.equal(clockDelta(2 ** 32 + 100, 2 ** 32 - 200), 300, 'across the wrap')
  t.equal(clockDelta(1000, 1200), -200, 'a stamp from the future is negative')
})

t.test('sample points sit in the middle of each block, scaled to the frame', async (t) => {
  const points = stripSamplePoints(PATTERN_WIDTH, PATTERN_HEIGHT)
  t.equal(points.length, CODE_BITS)
  t.same(points[0], { x: 8, y: STRIP.y + 16 })
  t.same(points[39], { x: 632, y: STRIP.y + 16 })
  t.same(stripSamplePoints(1280, 720)[1], { x: 48, y: (STRIP.y + 16) * 2 })
})
