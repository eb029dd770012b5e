import t from 'tap'
import { backoffDelay } from '../src/backoff.js'

const options = { initialMs: 100, maxMs: 1000, factor: 2 }

t.test('the ceiling doubles per attempt up to the maximum', async (t) => {
  t.same([0, 1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, options, () => 1)), [100, 200, 400, 800, 1000, 1000])
})

t.test('jitter keeps each delay between half the ceiling and the ceiling', async (t) => {
  t.same([0, 1, 2].map((attempt) => backoffDelay(attempt, options, () => 0)), [50, 100, 200])
  const delays = Array.from({ length: 200 }, () => backoffDelay(3, options))
  t.ok(delays.every((delay) => delay >= 400 && delay <= 800), 'within [400, 800]')
  t.ok(new Set(delays).size > 50, 'and spread out')
})
