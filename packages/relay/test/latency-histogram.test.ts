import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { LatencyHistogram } from '../src/latency-histogram.js'

// relay_latency_seconds counts in plain fields; what /metrics shows must be
// exactly what prom-client's own Histogram shows for the same observations.

const config = {
  name: 'relay_latency_seconds',
  help: 'latency',
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
}

function pair (): { reference: Registry, ours: Registry, observe: (path: string, seconds: number) => void } {
  const reference = new Registry()
  const ours = new Registry()
  const histogram = new Histogram({ ...config, labelNames: ['path'] as const, registers: [reference] })
  const latency = new LatencyHistogram({ ...config, registers: [ours] })
  return {
    reference,
    ours,
    observe: (path, seconds) => {
      histogram.labels(path).observe(seconds)
      latency.recorder(path).observe(seconds)
    },
  }
}

t.test('the exposition is prom-client\'s, value for value: buckets (bounds inclusive), +Inf, _sum, _count, per path', async (t) => {
  const { reference, ours, observe } = pair()
  t.equal(await ours.metrics(), await reference.metrics(), 'nothing observed: no series')

  // Every bound exactly, between bounds, 0, negative (a wall clock stepping back), past the last bound.
  const values = [...config.buckets, ...config.buckets.map((bound) => bound * 1.5), 0, -0.002, 2, 30, 0.0003]
  for (const value of values) observe('remote', value)
  for (let i = 0; i < 1000; i++) observe(i % 3 === 0 ? 'remote' : 'local', (i % 17) / 1000)
  const text = await ours.metrics()
  t.equal(text, await reference.metrics(), 'the same text')
  t.match(text, /^relay_latency_seconds_bucket\{le="0.001",path="local"\} \d+$/m, 'le then path, as before')
  t.match(text, /^relay_latency_seconds_count\{path="remote"\} 361$/m, 'every observation counted')
  t.same(await ours.getMetricsAsJSON(), await reference.getMetricsAsJSON(), 'the same JSON (get())')

  ours.resetMetrics()
  reference.resetMetrics()
  t.equal(await ours.metrics(), await reference.metrics(), 'after a reset: no series again')
  observe('local', 0.003)
  t.equal(await ours.metrics(), await reference.metrics(), 'and counting from zero')
})
