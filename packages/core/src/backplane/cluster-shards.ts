import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import type { Logger } from '../logger.js'
import { quitWithin, reconnectDelay, watchConnection } from '../redis/connection.js'
import type { BackplaneMetrics, ResubscribeReason } from './metrics.js'
import { keySlot, SLOT_COUNT } from './slot.js'

/** One master of the cluster as this node sees it: a subscriber connection and the channels placed on it. */
export interface Shard {
  /** The master's `host:port`, as the cluster announces it. */
  readonly key: string
  readonly connection: Redis
  readonly channels: Set<string>
  /** When the connection last became ready, and when this node's canary last came back through it (performance.now()). */
  readyAt: number
  lastCanaryAt: number
  /** Set once the shard was dropped or reopened: its connection's events no longer count. */
  retired: boolean
  /** The server dropped channels of this connection (a slot moved): subscribe its channels again at the next topology read. */
  unsettled: boolean
}

export interface ShardSubscribersOptions {
  log: Logger
  metrics: BackplaneMetrics
  connectionName: string
  connectTimeoutMs: number
  onMessage: (channel: Buffer, message: Buffer) => void
  /** A subscriber saw a slot move (a MOVED reply or an unsolicited SUNSUBSCRIBE): re-read the topology now. */
  onMoved: () => void
  closed: () => boolean
}

/** How long close() waits for QUIT before cutting a socket. */
const QUIT_TIMEOUT_MS = 1000

/**
 * The subscribing half of the cluster backplane: one connection per master,
 * each channel SSUBSCRIBEd on the master that owns its slot.
 *
 * The placement is reconciled with every topology read (`applyTopology`):
 * a channel whose slot now has another master (failover, resharding) is
 * subscribed there and unsubscribed from the old one; a master that left is
 * disconnected. Each such channel counts as a resubscription (metric
 * `backplane_resubscribes_total{reason="topology"}`). Frames published to a
 * slot while it moves are lost, never replayed: the receiver sees a gap in the
 * publisher's sequence.
 */
export class ShardSubscribers {
  readonly shards = new Map<string, Shard>()
  /** Resubscriptions so far, by reason. */
  readonly resubscribes: Record<ResubscribeReason, number> = { topology: 0, heal: 0 }
  readonly #options: ShardSubscribersOptions
  /** Every channel this node wants, with its slot. */
  readonly #wanted = new Map<string, number>()
  /** Where each wanted channel is subscribed (or being subscribed) now. */
  readonly #placed = new Map<string, Shard>()
  /** Channels that lost their shard (it left, or was reopened) and wait for a new placement. */
  readonly #orphans = new Map<string, ResubscribeReason>()
  /** Slot → master key, from the last topology read; empty before the first. */
  #masters: Array<string | undefined> = []
  readonly #firstTopology: Promise<void>
  #topologyRead!: () => void

  constructor (options: ShardSubscribersOptions) {
    this.#options = options
    this.#firstTopology = new Promise((resolve) => { this.#topologyRead = resolve })
  }

  /** The master owning `slot` in the last topology read. */
  masterOf (slot: number): string | undefined {
    return this.#masters[slot]
  }

  /** Subscribes `channel` on its shard; settles once the shard answered (or failed: the next topology read retries). */
  async add (channel: string): Promise<void> {
    this.#wanted.set(channel, keySlot(channel))
    await this.#firstTopology
    const slot = this.#wanted.get(channel)
    const key = slot === undefined ? undefined : this.#masters[slot]
    if (key === undefined || this.#placed.get(channel)?.key === key) return
    await this.#place(channel, key)
  }

  remove (channel: string): void {
    this.#wanted.delete(channel)
    this.#orphans.delete(channel)
    const shard = this.#placed.get(channel)
    if (shard === undefined) return
    this.#placed.delete(channel)
    this.#unsubscribe(shard, channel)
  }

  /** Follows a new slot map (`slots[slot][0]` is the master's key, as ioredis' Cluster#slots). */
  applyTopology (slots: ReadonlyArray<readonly string[] | undefined>): void {
    const masters = new Array<string | undefined>(SLOT_COUNT)
    const live = new Set<string>()
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const key = slots[slot]?.[0]
      masters[slot] = key
      if (key !== undefined) live.add(key)
    }
    this.#masters = masters
    for (const [key, shard] of this.shards) if (!live.has(key)) this.#retire(shard, 'topology')
    for (const key of live) if (!this.shards.has(key)) this.#open(key)
    const moved: Record<ResubscribeReason, number> = { topology: 0, heal: 0 }
    for (const [channel, slot] of this.#wanted) {
      const key = masters[slot]
      const placed = this.#placed.get(channel)
      if (key === undefined || placed?.key === key) continue
      const reason = placed === undefined ? this.#orphans.get(channel) : 'topology'
      if (reason !== undefined) moved[reason]++
      this.#orphans.delete(channel)
      void this.#place(channel, key)
    }
    // A slot that moved away and back between two reads leaves the channel
    // unsubscribed on a master that still owns it: SSUBSCRIBE is idempotent,
    // so every channel of a shard that saw a move is subscribed again.
    for (const shard of this.shards.values()) {
      if (!shard.unsettled) continue
      shard.unsettled = false
      for (const channel of shard.channels) {
        moved.topology++
        void this.#place(channel, shard.key)
      }
    }
    for (const reason of ['topology', 'heal'] as const) {
      if (moved[reason] === 0) continue
      this.resubscribes[reason] += moved[reason]
      this.#options.metrics.resubscribed(reason, moved[reason])
      this.#options.log.info({ channels: moved[reason], reason, shards: [...live] }, 'backplane resubscribed channels on their new shards')
    }
    this.#topologyRead()
  }

  /**
   * Replaces a shard's connection with a new one and subscribes its channels
   * again: for a subscription that went silent while the socket looks fine.
   */
  reopen (key: string): void {
    const shard = this.shards.get(key)
    if (shard === undefined) return
    this.#retire(shard, 'heal')
    this.#open(key)
    this.applyTopology(this.#masters.map((master) => master === undefined ? undefined : [master]))
  }

  async close (): Promise<void> {
    const shards = [...this.shards.values()]
    this.shards.clear()
    for (const shard of shards) shard.retired = true
    await Promise.all(shards.map(async (shard) => { await quitWithin(shard.connection, QUIT_TIMEOUT_MS) }))
  }

  async #place (channel: string, key: string): Promise<void> {
    const shard = this.shards.get(key)
    if (shard === undefined) return
    const previous = this.#placed.get(channel)
    if (!this.#wanted.has(channel)) return
    this.#placed.set(channel, shard)
    shard.channels.add(channel)
    if (previous !== undefined && previous !== shard) this.#unsubscribe(previous, channel)
    try {
      await shard.connection.ssubscribe(channel)
    } catch (err) {
      if (this.#options.closed()) return
      this.#options.log.warn({ err, channel, shard: key }, 'backplane ssubscribe failed; retrying after the next topology read')
      // Unplaced, so the next topology read subscribes it again wherever its slot is then.
      if (this.#placed.get(channel) === shard) {
        this.#placed.delete(channel)
        shard.channels.delete(channel)
        if (this.#wanted.has(channel)) this.#orphans.set(channel, 'topology')
      }
      this.#options.onMoved()
    }
  }

  #unsubscribe (shard: Shard, channel: string): void {
    shard.channels.delete(channel)
    if (shard.retired || shard.connection.status !== 'ready') return
    shard.connection.sunsubscribe(channel).catch((err: unknown) => {
      if (!this.#options.closed()) this.#options.log.debug({ err, channel, shard: shard.key }, 'backplane sunsubscribe failed')
    })
  }

  #retire (shard: Shard, reason: ResubscribeReason): void {
    shard.retired = true
    this.shards.delete(shard.key)
    for (const channel of shard.channels) {
      if (this.#placed.get(channel) === shard) this.#placed.delete(channel)
      if (this.#wanted.has(channel)) this.#orphans.set(channel, reason)
    }
    shard.channels.clear()
    shard.connection.disconnect()
  }

  #open (key: string): Shard {
    const colon = key.lastIndexOf(':')
    const connection = new Redis({
      host: key.slice(0, colon),
      port: Number(key.slice(colon + 1)),
      connectionName: this.#options.connectionName,
      connectTimeout: this.#options.connectTimeoutMs,
      retryStrategy: reconnectDelay,
      enableReadyCheck: true,
      // Only SSUBSCRIBE/SUNSUBSCRIBE go through it: they wait out a short outage
      // in order. After a reconnect this class subscribes the shard's channels
      // again itself (ioredis' autoResubscribe would leave a MOVED unhandled).
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: false,
      autoResendUnfulfilledCommands: true,
    })
    const shard: Shard = { key, connection, channels: new Set(), readyAt: performance.now(), lastCanaryAt: Number.NEGATIVE_INFINITY, retired: false, unsettled: false }
    this.shards.set(key, shard)
    connection.on('smessageBuffer', (channel: Buffer, message: Buffer) => {
      if (!shard.retired) this.#options.onMessage(channel, message)
    })
    connection.on('moved', () => {
      if (shard.retired) return
      shard.unsettled = true
      this.#options.onMoved()
    })
    watchConnection(connection, {
      log: this.#options.log,
      subject: 'backplane shard',
      fields: () => ({ connection: 'subscriber', shard: key }),
      closed: () => this.#options.closed() || shard.retired,
      onReady: (restored) => {
        shard.readyAt = performance.now()
        if (!restored || shard.retired) return
        this.#options.metrics.reconnect('subscriber')
        for (const channel of [...shard.channels]) void this.#place(channel, key)
      },
      // A canary from before the loss proves nothing about the connection that replaces it.
      onClose: () => { shard.lastCanaryAt = Number.NEGATIVE_INFINITY },
    })
    return shard
  }
}
