import { performance } from 'node:perf_hooks'
import { Redis, type RedisOptions } from 'ioredis'
import { BackplaneUnavailableError } from '../errors.js'
import { BackplaneBase, type BackplaneBaseOptions } from './base.js'
import { canaryChannelName } from './channels.js'
import { decodeEnvelope, encodeEnvelope } from './envelope.js'
import { publishFrame } from './publish-command.js'
import { quitWithin, reconnectDelay, watchConnection } from '../redis/connection.js'
import type { ConnectionRole } from './metrics.js'
import type { Frame } from './types.js'

export interface RedisBackplaneOptions extends BackplaneBaseOptions {
  /** REDIS_URL */
  url: string
  /** How often the readiness canary goes round (default 1000 ms). */
  canaryIntervalMs?: number
  /** ready() fails when the last canary round trip is older than this (default 3000 ms). */
  canaryStaleMs?: number
  /**
   * When both connections claim to be up but no canary has come back for this
   * long, both are dropped and re-established (default 10000 ms): a half-open
   * TCP connection or a silently lost subscription heals itself.
   */
  healAfterMs?: number
  /** TCP connect timeout of each connection (default 3000 ms). */
  connectTimeoutMs?: number
}

/** How long ready() waits for an on-demand canary when the periodic one is stale. */
/** Kind byte of the readiness canary: it travels on its own channel, so any kind would do. */
const CANARY_KIND = 1
const PROBE_TIMEOUT_MS = 1000
/** How long close() waits for QUIT (pending publishes answered) before cutting the socket. */
const QUIT_TIMEOUT_MS = 1000

/**
 * The cluster backplane on Redis pub/sub: one channel per session, PUBLISH on
 * one connection and SUBSCRIBE on another (a subscribed connection is slow to
 * answer anything else while frames stream in, and the two fail differently).
 *
 * - Publisher: no offline queue, no retries, no resend after reconnect — a
 *   frame that cannot go out now is dropped and counted, never replayed late.
 *   Publishes in flight are bounded (see BackplaneBase).
 * - Subscriber: ioredis re-subscribes every channel after a reconnect
 *   (`autoResubscribe`), including after Redis cut it for exceeding
 *   `client-output-buffer-limit pubsub`; SUBSCRIBE/UNSUBSCRIBE issued while
 *   down wait in its offline queue and run in order once it is back.
 * - ioredis 6 speaks RESP3: messages arrive as push frames and are taken from
 *   `messageBuffer` (raw bytes, a view into the socket data); the string
 *   `message` event is never listened to, so no payload is ever decoded as text.
 * - Readiness: a canary goes round every second on a node-specific channel,
 *   published on the publisher connection and received on the subscriber.
 */
export class RedisBackplane extends BackplaneBase {
  readonly kind = 'redis' as const
  readonly #pub: Redis
  readonly #sub: Redis
  readonly #canaryChannel: string
  readonly #canaryStaleMs: number
  readonly #healAfterMs: number
  readonly #timer: NodeJS.Timeout
  /** When a connection last became ready: silence is only suspicious counted from there. */
  #connectedAt = performance.now()
  #canarySeq = 0
  #lastCanaryAt = Number.NEGATIVE_INFINITY
  #lastHealAt = Number.NEGATIVE_INFINITY
  readonly #canaryWaiters = new Set<(err?: Error) => void>()
  #closing: Promise<void> | undefined

  constructor (options: RedisBackplaneOptions) {
    super(options)
    this.#canaryChannel = canaryChannelName(this.keyPrefix, this.nodeId)
    this.#canaryStaleMs = options.canaryStaleMs ?? 3000
    this.#healAfterMs = options.healAfterMs ?? 10_000
    const common: RedisOptions = {
      connectTimeout: options.connectTimeoutMs ?? 3000,
      retryStrategy: reconnectDelay,
      enableReadyCheck: true,
    }
    this.#pub = new Redis(options.url, {
      ...common,
      connectionName: `ss-backplane-pub-${this.nodeId}`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    })
    this.#sub = new Redis(options.url, {
      ...common,
      connectionName: `ss-backplane-sub-${this.nodeId}`,
      enableOfflineQueue: true,
      // Only SUBSCRIBE/UNSUBSCRIBE go through this connection: they must not
      // be failed by a long outage, or a session would stay unsubscribed.
      maxRetriesPerRequest: null,
      autoResubscribe: true,
      autoResendUnfulfilledCommands: true,
    })
    this.#watch(this.#pub, 'publisher')
    this.#watch(this.#sub, 'subscriber')
    this.#sub.on('messageBuffer', this.#onMessage)
    this.#sub.subscribe(this.#canaryChannel).catch((err: unknown) => {
      if (!this.closed) this.log.error({ err, channel: this.#canaryChannel }, 'backplane canary subscribe failed')
    })
    this.#timer = setInterval(this.#tick, options.canaryIntervalMs ?? 1000)
  }

  async ready (): Promise<void> {
    if (this.closed) throw new BackplaneUnavailableError('closed')
    if (this.#pub.status !== 'ready') throw new BackplaneUnavailableError(`redis publisher connection is ${this.#pub.status}`)
    if (this.#sub.status !== 'ready') throw new BackplaneUnavailableError(`redis subscriber connection is ${this.#sub.status}`)
    const age = performance.now() - this.#lastCanaryAt
    if (age <= this.#canaryStaleMs) return
    // Stale (or never seen): one canary on demand decides, so a node is ready
    // as soon as it works rather than at the next periodic round.
    const since = Number.isFinite(age) ? `for ${Math.round(age)} ms` : 'yet'
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#canaryWaiters.delete(done)
        reject(new BackplaneUnavailableError(`no canary came back through redis ${since}`))
      }, PROBE_TIMEOUT_MS)
      const done = (err?: Error): void => {
        clearTimeout(timer)
        if (err === undefined) resolve()
        else reject(err)
      }
      this.#canaryWaiters.add(done)
      this.#sendCanary()
    })
  }

  async close (): Promise<void> {
    if (this.#closing !== undefined) return await this.#closing
    this.closed = true
    clearInterval(this.#timer)
    for (const done of this.#canaryWaiters) done(new BackplaneUnavailableError('closed'))
    this.#canaryWaiters.clear()
    this.sessions.clear()
    this.#closing = Promise.all([quitWithin(this.#pub, QUIT_TIMEOUT_MS), quitWithin(this.#sub, QUIT_TIMEOUT_MS)]).then(() => {})
    await this.#closing
  }

  protected connected (): boolean {
    return this.#pub.status === 'ready'
  }

  protected transmit (channel: string, frame: Frame, bytes: number): void {
    publishFrame(this.#pub, channel, this.nodeIdBytes, frame).then(
      () => this.settle(bytes),
      (err: unknown) => this.settle(bytes, err, channel)
    )
  }

  protected async subscribeChannel (channel: string): Promise<void> {
    try {
      await this.#sub.subscribe(channel)
    } catch (err) {
      if (!this.closed) this.log.warn({ err, channel }, 'backplane subscribe failed')
    }
  }

  protected unsubscribeChannel (channel: string): void {
    this.#sub.unsubscribe(channel).catch((err: unknown) => {
      if (!this.closed) this.log.warn({ err, channel }, 'backplane unsubscribe failed')
    })
  }

  readonly #onMessage = (channelBytes: Buffer, message: Buffer): void => {
    const channel = channelBytes.toString()
    const session = this.sessions.get(channel)
    if (session === undefined) {
      if (channel === this.#canaryChannel) this.#onCanary(message)
      // Otherwise the last local subscriber left while the message was on its way.
      return
    }
    this.receiveMessage(session, channel, message)
  }

  #onCanary (message: Buffer): void {
    const envelope = decodeEnvelope(message)
    if (envelope === null || !envelope.origin.equals(this.nodeIdBytes) || envelope.payload.length !== 8) return
    const now = performance.now()
    this.#lastCanaryAt = now
    this.metrics.canaryRoundTrip((now - envelope.payload.readDoubleBE(0)) / 1000)
    for (const done of this.#canaryWaiters) done()
    this.#canaryWaiters.clear()
  }

  #sendCanary (): void {
    const payload = Buffer.allocUnsafe(8)
    payload.writeDoubleBE(performance.now())
    const message = encodeEnvelope(this.nodeIdBytes, { kind: CANARY_KIND, seq: ++this.#canarySeq, payload })
    // Past the in-flight bound on purpose: a busy backplane is still a working one.
    this.#pub.publish(this.#canaryChannel, message).catch((err: unknown) => {
      this.log.debug({ err, channel: this.#canaryChannel }, 'backplane canary publish failed')
    })
  }

  readonly #tick = (): void => {
    if (this.closed || this.#pub.status !== 'ready' || this.#sub.status !== 'ready') return
    const now = performance.now()
    const silentFor = now - Math.max(this.#lastCanaryAt, this.#connectedAt, this.#lastHealAt)
    if (silentFor > this.#healAfterMs) {
      this.#lastHealAt = now
      this.log.warn({ silentMs: Math.round(silentFor) }, 'backplane canary not coming back though redis looks connected; reconnecting')
      this.#pub.disconnect(true)
      this.#sub.disconnect(true)
      return
    }
    this.#sendCanary()
  }

  #watch (connection: Redis, role: ConnectionRole): void {
    watchConnection(connection, {
      log: this.log,
      subject: 'backplane',
      fields: () => ({ connection: role }),
      closed: () => this.closed,
      onReady: (restored) => {
        if (restored) {
          this.counters.reconnects++
          this.metrics.reconnect(role)
        }
        this.#connectedAt = performance.now()
      },
      // A canary from before the loss proves nothing about the connections that replace it.
      onClose: () => { this.#lastCanaryAt = Number.NEGATIVE_INFINITY },
    })
  }
}
