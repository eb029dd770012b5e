/** A cache whose bytes count against a CacheBudget (GopCache). */
export interface Evictable {
  /** Drops everything it holds; the budget has already stopped counting it. */
  evict (): void
}

export interface CacheBudgetOptions {
  /** Called after each eviction with the bytes it freed (a metric). */
  onEvict?: (bytes: number) => void
}

/**
 * The relay-wide bound on what late-join caches hold (SPEC §10,
 * `RELAY_CACHE_BUDGET`), shared by every GopCache of a relay. A cache reports
 * what it holds after each change (`hold`); while the sum is over the limit,
 * the cache holding the most is evicted whole. Its late joiners then wait for
 * the stream's next keyframe group, as they do before the first one.
 *
 * Why the largest: one eviction frees the most memory, so the fewest sessions
 * lose their cache, and the sessions that weigh most — high bitrates, long
 * groups of pictures, or a publisher stuffing its cache on purpose — pay
 * first, while the many ordinary ones keep instant start-up. (The oldest
 * group would pick a session with sparse keyframes, usually the same one,
 * but could evict a small one while a heavy one stays.)
 *
 * Cost: finding the largest walks the caches that hold bytes, once per
 * eviction; an eviction frees at least limit / caches bytes, so over a long
 * run that is a small constant per byte cached.
 */
export class CacheBudget {
  readonly limit: number
  readonly #held = new Map<Evictable, number>()
  #total = 0
  readonly #onEvict: ((bytes: number) => void) | undefined

  constructor (limit: number, options: CacheBudgetOptions = {}) {
    if (!(limit > 0)) throw new RangeError(`a cache budget must be positive (got ${limit})`)
    this.limit = limit
    this.#onEvict = options.onEvict
  }

  /** Bytes held by all caches together (never above `limit` once `hold` returns). */
  get heldBytes (): number { return this.#total }

  /** Caches holding bytes. */
  get caches (): number { return this.#held.size }

  /** `cache` now holds `bytes` (0: nothing; it is forgotten). Evicts the largest caches while the sum is over the limit. */
  hold (cache: Evictable, bytes: number): void {
    this.#record(cache, bytes)
    while (this.#total > this.limit) {
      let largest: Evictable | undefined
      let most = 0
      for (const [member, held] of this.#held) {
        if (held > most) {
          largest = member
          most = held
        }
      }
      this.#record(largest!, 0)
      largest!.evict()
      this.#onEvict?.(most)
    }
  }

  #record (cache: Evictable, bytes: number): void {
    this.#total += bytes - (this.#held.get(cache) ?? 0)
    if (bytes > 0) this.#held.set(cache, bytes)
    else this.#held.delete(cache)
  }
}
