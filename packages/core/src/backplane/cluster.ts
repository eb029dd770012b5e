import { performance } from 'node:perf_hooks'
import { Cluster } from 'ioredis'
import { BackplaneUnavailableError } from '../errors.js'
import { quitWithin, reconnectDelay, watchConnection } from '../redis/connection.js'
import { BackplaneBase, type BackplaneBaseOptions, type LocalSession } from './base.js'
import { shardedChannelName } from './channels.js'
import { ShardCanaries } from './cluster-canary.js'
import { ShardSubscribers } from './cluster-shards.js'
import { encodeEnvelope, type Envelope } from './envelope.js'
import type { Frame } from './types.js'

export interface ClusterBackplaneOptions extends BackplaneBaseOptions {
  /** REDIS_CLUSTER_NODES: seeds; the rest of the cluster is discovered from them. */
  nodes: ReadonlyArray<{ host: string, port: number }>
  /** How often a canary goes round each shard (default 1000 ms). */
  canaryIntervalMs?: number
  /** ready() fails when a shard's last canary round trip is older than this (default 3000 ms). */
  canaryStaleMs?: number
  /** A shard whose connection looks up but whose canary has not come back for this long is reconnected (default 10000 ms). */
  healAfterMs?: number
  /** How often the slot map is read again (default 1000 ms); also at once after a MOVED or a failed publish. */
  topologyIntervalMs?: number
  connectTimeoutMs?: number
}

const QUIT_TIMEOUT_MS = 1000
/** Publish failures that mean the slot map is out of date. */
const STALE_TOPOLOGY = /MOVED|CLUSTERDOWN|TRYAGAIN|Connection is closed|isn't ready|redirections/

/**
 * The backplane on Redis Cluster's sharded pub/sub (SPEC §11): a session's
 * channel `<prefix>session:{<id>}` lives on the shard owning its slot, so the
 * work spreads over the masters. Same envelope, same guarantees as
 * RedisBackplane (types.ts): at most once, ordered per publisher, gaps visible
 * in the publisher's sequence numbers.
 *
 * - Publisher: an ioredis Cluster sends SPUBLISH to the slot's master, no
 *   offline queue, no retry and no redirection (`maxRedirections: 0`): a
 *   frame that meets a moved slot or a dead master is lost and counted, never
 *   sent late behind newer ones. Such a failure re-reads the slot map at once.
 * - Subscriber: ShardSubscribers, one connection per master, following each
 *   topology read (every `topologyIntervalMs`, and after MOVED / unsolicited
 *   SUNSUBSCRIBE): after a failover or a slot move the channels are
 *   subscribed on their new master.
 * - Readiness: a canary per master, on a channel whose slot that master owns;
 *   every shard must have answered recently. A shard that stays silent while
 *   its connection looks up is reconnected and its channels subscribed again.
 * - Arriving frames whose sequence skips numbers of the same origin count as
 *   `backplane_sequence_gaps_total`; the relay resyncs media operators (4205).
 */
export class ClusterBackplane extends BackplaneBase {
  readonly kind = 'redis-cluster' as const
  readonly #pub: Cluster
  readonly #shards: ShardSubscribers
  readonly #canaries: ShardCanaries
  readonly #canaryStaleMs: number
  readonly #healAfterMs: number
  readonly #timer: NodeJS.Timeout
  readonly #lastSeq = new WeakMap<LocalSession, { origin: string, seq: number }>()
  readonly #lastHealAt = new Map<string, number>()
  #closing: Promise<void> | undefined

  constructor (options: ClusterBackplaneOptions) {
    super(options)
    this.#canaryStaleMs = options.canaryStaleMs ?? 3000
    this.#healAfterMs = options.healAfterMs ?? 10_000
    const connectTimeout = options.connectTimeoutMs ?? 3000
    this.#pub = new Cluster(options.nodes.map(({ host, port }) => ({ host, port })), {
      enableOfflineQueue: false,
      enableReadyCheck: true,
      maxRedirections: 0,
      slotsRefreshInterval: options.topologyIntervalMs ?? 1000,
      slotsRefreshTimeout: 1000,
      clusterRetryStrategy: reconnectDelay,
      redisOptions: {
        connectionName: `ss-backplane-pub-${this.nodeId}`,
        connectTimeout,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
      },
    })
    this.#shards = new ShardSubscribers({
      log: this.log,
      metrics: this.metrics,
      connectionName: `ss-backplane-ssub-${this.nodeId}`,
      connectTimeoutMs: connectTimeout,
      onMessage: this.#onMessage,
      onMoved: this.#refreshTopology,
      closed: () => this.closed,
    })
    this.#canaries = new ShardCanaries({
      keyPrefix: this.keyPrefix,
      nodeId: this.nodeId,
      nodeIdBytes: this.nodeIdBytes,
      shards: this.#shards,
      publish: async (channel, message) => await this.#pub.spublish(channel, message),
      log: this.log,
      metrics: this.metrics,
    })
    watchConnection(this.#pub, {
      log: this.log,
      subject: 'backplane cluster',
      fields: () => ({ connection: 'publisher' }),
      closed: () => this.closed,
      onReady: (restored) => {
        if (!restored) return
        this.counters.reconnects++
        this.metrics.reconnect('publisher')
      },
    })
    this.#pub.on('refresh', this.#onTopology)
    this.#timer = setInterval(this.#tick, options.canaryIntervalMs ?? 1000)
  }

  /** Resubscriptions so far (topology: the slot moved; heal: a silent shard was reconnected). */
  get resubscribes (): Readonly<Record<'topology' | 'heal', number>> {
    return { ...this.#shards.resubscribes }
  }

  async ready (): Promise<void> {
    if (this.closed) throw new BackplaneUnavailableError('closed')
    if (this.#pub.status !== 'ready') throw new BackplaneUnavailableError(`redis cluster publisher is ${this.#pub.status}`)
    const shards = [...this.#shards.shards.values()]
    if (shards.length === 0) throw new BackplaneUnavailableError('no redis cluster topology yet')
    const down = shards.filter((shard) => shard.connection.status !== 'ready')
    if (down.length > 0) throw new BackplaneUnavailableError(`redis cluster shard subscriber down: ${down.map((s) => `${s.key} (${s.connection.status})`).join(', ')}`)
    await this.#canaries.probe(shards, this.#canaryStaleMs, () => this.closed)
  }

  async close (): Promise<void> {
    if (this.#closing !== undefined) return await this.#closing
    this.closed = true
    clearInterval(this.#timer)
    this.#canaries.wake()
    this.sessions.clear()
    this.#closing = Promise.all([quitWithin(this.#pub, QUIT_TIMEOUT_MS), this.#shards.close()]).then(() => {})
    await this.#closing
  }

  protected override channelOf (sessionId: string): string {
    return shardedChannelName(this.keyPrefix, sessionId)
  }

  protected connected (): boolean {
    return this.#pub.status === 'ready'
  }

  protected transmit (channel: string, frame: Frame, bytes: number): void {
    this.#pub.spublish(channel, encodeEnvelope(this.nodeIdBytes, frame)).then(
      () => this.settle(bytes),
      (err: unknown) => {
        this.settle(bytes, err, channel)
        if (STALE_TOPOLOGY.test((err as Error).message)) this.#refreshTopology()
      }
    )
  }

  protected async subscribeChannel (channel: string): Promise<void> {
    await this.#shards.add(channel)
  }

  protected unsubscribeChannel (channel: string): void {
    this.#shards.remove(channel)
  }

  readonly #refreshTopology = (): void => {
    if (!this.closed && this.#pub.status === 'ready') this.#pub.refreshSlotsCache()
  }

  readonly #onTopology = (): void => {
    if (this.closed) return
    this.#shards.applyTopology(this.#pub.slots)
    this.#canaries.follow()
  }

  readonly #tick = (): void => {
    if (this.closed || this.#pub.status !== 'ready') return
    const now = performance.now()
    for (const shard of [...this.#shards.shards.values()]) {
      if (shard.connection.status !== 'ready') continue
      const silentFor = now - Math.max(shard.lastCanaryAt, shard.readyAt, this.#lastHealAt.get(shard.key) ?? Number.NEGATIVE_INFINITY)
      if (silentFor > this.#healAfterMs) {
        this.#lastHealAt.set(shard.key, now)
        this.log.warn({ shard: shard.key, silentMs: Math.round(silentFor), channels: shard.channels.size },
          'backplane canary not coming back through a shard that looks connected; reconnecting it')
        this.#shards.reopen(shard.key)
        continue
      }
      if (this.#pub.status === 'ready') this.#canaries.send(shard)
    }
  }

  readonly #onMessage = (channelBytes: Buffer, message: Buffer): void => {
    const channel = channelBytes.toString()
    const session = this.sessions.get(channel)
    // Otherwise a canary, or the last local subscriber left while the message was on its way.
    if (session === undefined) {
      this.#canaries.receive(channel, message)
      return
    }
    this.receiveMessage(session, channel, message)
  }

  /** Counts gaps in each origin's envelope sequence (backplane_sequence_gaps_total). */
  protected override beforeDeliver (session: LocalSession, envelope: Envelope, origin: string): void {
    const last = this.#lastSeq.get(session)
    if (last === undefined || last.origin !== origin) this.#lastSeq.set(session, { origin, seq: envelope.seq })
    else {
      if (envelope.seq > last.seq + 1) this.metrics.sequenceGap(envelope.seq - last.seq - 1)
      last.seq = envelope.seq
    }
  }
}
