import { Histogram, type Registry } from 'prom-client'

/**
 * One `path` of the latency histogram: counts in plain fields. prom-client's
 * `observe`, even on a child bound with `labels()`, builds and hashes a label
 * object per call; per message that was 2.9 % of the relays' busy time in
 * bench scenario (b).
 */
export class LatencyRecorder {
  /** Observations per bucket, not cumulative; past the last bound only in `count`. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  readonly #bounds: readonly number[]

  constructor (bounds: readonly number[]) {
    this.#bounds = bounds
    this.counts = new Float64Array(bounds.length)
  }

  /** `seconds` is finite (a difference of two Date.now() values): unlike prom-client's, this does not check. */
  observe (seconds: number): void {
    const bounds = this.#bounds
    let bucket = 0
    while (bucket < bounds.length && seconds > bounds[bucket]!) bucket++
    if (bucket < bounds.length) this.counts[bucket]!++
    this.sum += seconds
    this.count++
  }

  reset (): void {
    this.counts.fill(0)
    this.sum = 0
    this.count = 0
  }
}

/** One line of the exposition, in prom-client's shape (no exemplars: null on buckets, undefined on _sum and _count). */
interface ExportedValue { labels: Record<string, string | number>, sharedLabels: Record<string, string>, value: number, metricName: string, exemplar: null | undefined }

/**
 * A prom-client histogram with one label, `path`, whose counts live in
 * LatencyRecorders: the exposition is prom-client's own (buckets, `+Inf`,
 * `_sum`, `_count`), built from the recorders when scraped. Observe through
 * `recorder(path)`, not through prom-client's `observe`/`labels`.
 */
export class LatencyHistogram extends Histogram<'path'> {
  readonly #name: string
  readonly #help: string
  readonly #bounds: readonly number[]
  readonly #recorders = new Map<string, LatencyRecorder>()

  /** `buckets` in increasing order, as prom-client takes them. */
  constructor (config: { name: string, help: string, buckets: number[], registers: Registry[] }) {
    super({ ...config, labelNames: ['path'] })
    this.#name = config.name
    this.#help = config.help
    this.#bounds = [...config.buckets]
  }

  /** The recorder of `path`, exported from its first observation on. */
  recorder (path: string): LatencyRecorder {
    let recorder = this.#recorders.get(path)
    if (recorder === undefined) {
      recorder = new LatencyRecorder(this.#bounds)
      this.#recorders.set(path, recorder)
    }
    return recorder
  }

  override reset (): void {
    // prom-client's constructor resets too, before this class's fields exist.
    if (!(#recorders in this)) return
    for (const recorder of this.#recorders.values()) recorder.reset()
  }

  /** What the registry reads for the text exposition (prom-client prefers it to `get`). */
  async getForPromString (): Promise<{ name: string, help: string, type: 'histogram', values: ExportedValue[], aggregator: 'sum' }> {
    const bucket = `${this.#name}_bucket`
    const values: ExportedValue[] = []
    for (const [path, recorder] of this.#recorders) {
      if (recorder.count === 0) continue
      const sharedLabels = { path }
      let cumulative = 0
      this.#bounds.forEach((le, i) => {
        cumulative += recorder.counts[i]!
        values.push({ labels: { le }, sharedLabels, value: cumulative, metricName: bucket, exemplar: null })
      })
      values.push(
        { labels: { le: '+Inf' }, sharedLabels, value: recorder.count, metricName: bucket, exemplar: null },
        { labels: {}, sharedLabels, value: recorder.sum, metricName: `${this.#name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels, value: recorder.count, metricName: `${this.#name}_count`, exemplar: undefined }
      )
    }
    return { name: this.#name, help: this.#help, type: 'histogram', values, aggregator: 'sum' }
  }

  override async get (): ReturnType<Histogram<'path'>['get']> {
    const data = await this.getForPromString()
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } })),
    } as unknown as Awaited<ReturnType<Histogram<'path'>['get']>>
  }
}
