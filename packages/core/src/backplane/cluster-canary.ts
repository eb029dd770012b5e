import { performance } from 'node:perf_hooks'
import { BackplaneUnavailableError } from '../errors.js'
import type { Logger } from '../logger.js'
import { shardCanaryChannelName } from './channels.js'
import type { Shard, ShardSubscribers } from './cluster-shards.js'
import { decodeEnvelope, encodeEnvelope } from './envelope.js'
import type { BackplaneMetrics } from './metrics.js'
import { keySlot } from './slot.js'

export interface ShardCanariesOptions {
  keyPrefix: string
  nodeId: string
  nodeIdBytes: Buffer
  shards: ShardSubscribers
  /** SPUBLISH through the publisher connection. */
  publish: (channel: string, message: Buffer) => Promise<unknown>
  log: Logger
  metrics: BackplaneMetrics
}

/** Kind byte of a canary: it travels on its own channel, so any kind would do. */
const CANARY_KIND = 1
/** How long an on-demand probe waits for the silent shards' canaries. */
const PROBE_TIMEOUT_MS = 1000

/**
 * The readiness canaries of the cluster backplane: one channel per master,
 * `<prefix>canary:<nodeId>:{<tag>}`, with a tag chosen so that master owns the
 * channel's slot. A canary published on the publisher connection and received
 * on that master's subscriber connection proves fan-out through that shard.
 */
export class ShardCanaries {
  readonly #options: ShardCanariesOptions
  /** Canary channel → the master it must come back through. */
  readonly #channels = new Map<string, string>()
  readonly #waiters = new Set<() => void>()
  #seq = 0

  constructor (options: ShardCanariesOptions) {
    this.#options = options
  }

  /** After a topology read: each master gets a canary channel on one of its slots, kept while it still owns it. */
  follow (): void {
    const shards = this.#options.shards
    const covered = new Set<string>()
    for (const [channel, key] of this.#channels) {
      if (shards.masterOf(keySlot(channel)) === key && shards.shards.has(key)) {
        covered.add(key)
        continue
      }
      this.#channels.delete(channel)
      shards.remove(channel)
    }
    for (const key of shards.shards.keys()) {
      if (covered.has(key)) continue
      const channel = this.#channelOn(key)
      if (channel === undefined) continue
      this.#channels.set(channel, key)
      void shards.add(channel)
    }
  }

  /** Takes a message if it is on a canary channel (returns whether it was). */
  receive (channel: string, message: Buffer): boolean {
    const key = this.#channels.get(channel)
    if (key === undefined) return false
    const envelope = decodeEnvelope(message)
    const shard = this.#options.shards.shards.get(key)
    if (shard === undefined || envelope === null || !envelope.origin.equals(this.#options.nodeIdBytes) || envelope.payload.length !== 8) return true
    const now = performance.now()
    shard.lastCanaryAt = now
    this.#options.metrics.canaryRoundTrip((now - envelope.payload.readDoubleBE(0)) / 1000)
    for (const check of [...this.#waiters]) check()
    return true
  }

  send (shard: Shard): void {
    const channel = [...this.#channels].find(([, key]) => key === shard.key)?.[0]
    if (channel === undefined) return
    const payload = Buffer.allocUnsafe(8)
    payload.writeDoubleBE(performance.now())
    const message = encodeEnvelope(this.#options.nodeIdBytes, { kind: CANARY_KIND, seq: ++this.#seq, payload })
    // Past the in-flight bound on purpose: a busy backplane is still a working one.
    this.#options.publish(channel, message).catch((err: unknown) => {
      this.#options.log.debug({ err, channel, shard: shard.key }, 'backplane canary publish failed')
    })
  }

  /**
   * Resolves when every shard's canary came back within `staleMs`; for those
   * that did not, one canary on demand decides within PROBE_TIMEOUT_MS.
   */
  async probe (shards: Shard[], staleMs: number, closed: () => boolean): Promise<void> {
    const since = performance.now()
    // A shard healed meanwhile is replaced by a new one under the same key: follow the key.
    const current = (shard: Shard): Shard | undefined => shard.retired ? this.#options.shards.shards.get(shard.key) : shard
    const stale = (): Shard[] => shards.map(current).filter((shard): shard is Shard => shard !== undefined && since - shard.lastCanaryAt > staleMs)
    if (stale().length === 0) return
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (closed()) done(new BackplaneUnavailableError('closed'))
        else if (stale().length === 0) done()
      }
      const timer = setTimeout(() => {
        done(new BackplaneUnavailableError(`no canary came back through redis cluster shard ${stale().map((s) => s.key).join(', ')}`))
      }, PROBE_TIMEOUT_MS)
      const done = (err?: Error): void => {
        clearTimeout(timer)
        this.#waiters.delete(check)
        if (err === undefined) resolve()
        else reject(err)
      }
      this.#waiters.add(check)
      for (const shard of stale()) this.send(shard)
    })
  }

  /** Settles pending probes (they reject when `closed()` says so). */
  wake (): void {
    for (const check of [...this.#waiters]) check()
  }

  #channelOn (key: string): string | undefined {
    for (let tag = 0; tag < 1_000_000; tag++) {
      const channel = shardCanaryChannelName(this.#options.keyPrefix, this.#options.nodeId, String(tag))
      if (this.#options.shards.masterOf(keySlot(channel)) === key) return channel
    }
    return undefined
  }
}
