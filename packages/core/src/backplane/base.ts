import type { Registry } from 'prom-client'
import type { Logger } from '../logger.js'
import { BackplanePublishFailedError } from '../errors.js'
import { LogThrottle } from '../log-throttle.js'
import { channelName } from './channels.js'
import { decodeEnvelope, ENVELOPE_HEADER_BYTES, isEncodable, isFromOrigin, newNodeId, nodeIdToBytes, originIdOf, type Envelope } from './envelope.js'
import { createBackplaneMetrics, type BackplaneMetrics } from './metrics.js'
import { dropReasons, type Backplane, type BackplaneKind, type BackplaneStats, type DropReason, type Frame, type FrameHandler, type Unsubscribe } from './types.js'

export interface BackplaneBaseOptions {
  /** REDIS_KEY_PREFIX: the prefix of every channel, so deployments sharing a transport stay apart. */
  keyPrefix: string
  /** This node's id, a UUID; a random one by default. */
  nodeId?: string
  logger: Logger
  /** Where the backplane metrics are registered; none without it. */
  metrics?: Registry
  /** Publishes in flight before further frames are dropped (default 64). */
  maxInFlight?: number
  /**
   * Bytes in flight before further frames are dropped (default 32 MiB). A
   * single frame larger than this still goes out when nothing else is in flight.
   */
  maxInFlightBytes?: number
}

// Bytes bound memory; the count only caps pipeline depth. 64 was measured too
// tight for a relay carrying ~30 publishers (bench scenario b lost ~25%).
export const DEFAULT_MAX_IN_FLIGHT = 1024
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 32 * 1024 * 1024
/** Warnings about drops, errors and garbage are logged at most this often, with counts. */
const LOG_EVERY_MS = 10_000

/** The local subscribers of one session on this node. */
export interface LocalSession {
  readonly sessionId: string
  /** Copy-on-write, so a handler may unsubscribe (itself or others) during delivery. */
  handlers: readonly FrameHandler[]
  /** Settles when the transport confirmed (or failed) the channel subscription. */
  subscribed: Promise<void>
  /** The last origin seen on the session, so its id string is not rebuilt per frame. */
  lastOrigin?: { bytes: Buffer, id: string }
}

/**
 * What both implementations share: the drop-don't-queue publish bound, the
 * per-session reference counting of local handlers, delivery to them, and
 * the counters. Subclasses move bytes.
 */
export abstract class BackplaneBase implements Backplane {
  abstract readonly kind: BackplaneKind
  readonly nodeId: string
  protected readonly nodeIdBytes: Buffer
  protected readonly keyPrefix: string
  protected readonly log: Logger
  protected readonly metrics: BackplaneMetrics
  /** Channel name → local subscribers. */
  protected readonly sessions = new Map<string, LocalSession>()
  protected closed = false
  protected readonly counters = {
    published: 0,
    dropped: Object.fromEntries(dropReasons.map((reason) => [reason, 0])) as Record<DropReason, number>,
    publishErrors: 0,
    received: 0,
    malformed: 0,
    reconnects: 0,
  }

  readonly #maxInFlight: number
  readonly #maxInFlightBytes: number
  #inFlight = 0
  #inFlightBytes = 0
  #drainWaiters: Array<() => void> = []
  readonly #logThrottle = new LogThrottle(LOG_EVERY_MS)

  constructor (options: BackplaneBaseOptions) {
    this.nodeId = (options.nodeId ?? newNodeId()).toLowerCase()
    this.nodeIdBytes = nodeIdToBytes(this.nodeId)
    this.keyPrefix = options.keyPrefix
    this.log = options.logger
    this.metrics = createBackplaneMetrics(options.metrics)
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT
    this.#maxInFlightBytes = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES
    if (!(this.#maxInFlight >= 1)) throw new RangeError(`maxInFlight must be >= 1, got ${this.#maxInFlight}`)
  }

  publish (sessionId: string, frame: Frame): boolean {
    if (this.closed) return this.#drop('closed', sessionId)
    if (!isEncodable(frame)) return this.#drop('invalid', sessionId)
    if (!this.connected()) return this.#drop('disconnected', sessionId)
    const bytes = ENVELOPE_HEADER_BYTES + frame.payload.length
    if (this.#inFlight >= this.#maxInFlight ||
      (this.#inFlight > 0 && this.#inFlightBytes + bytes > this.#maxInFlightBytes)) {
      return this.#drop('backpressure', sessionId)
    }
    this.#inFlight++
    this.#inFlightBytes += bytes
    this.counters.published++
    this.transmit(this.channelOf(sessionId), frame, bytes)
    return true
  }

  get writable (): boolean {
    return this.closed || (this.#inFlight < this.#maxInFlight / 2 && this.#inFlightBytes < this.#maxInFlightBytes / 2)
  }

  async whenWritable (): Promise<void> {
    if (this.writable) return
    await new Promise<void>((resolve) => this.#drainWaiters.push(resolve))
  }

  subscribe (sessionId: string, handler: FrameHandler): Unsubscribe {
    if (this.closed) return () => {}
    const channel = this.channelOf(sessionId)
    let session = this.sessions.get(channel)
    if (session === undefined) {
      session = { sessionId, handlers: [handler], subscribed: this.subscribeChannel(channel) }
      this.sessions.set(channel, session)
    } else {
      session.handlers = [...session.handlers, handler]
    }
    const subscribed = session
    let active = true
    return () => {
      if (!active) return
      active = false
      const index = subscribed.handlers.indexOf(handler)
      if (index === -1) return
      subscribed.handlers = subscribed.handlers.filter((_, i) => i !== index)
      // Only the session object still in the map may unsubscribe the channel:
      // after close() or a later resubscribe this one is stale.
      if (subscribed.handlers.length === 0 && this.sessions.get(channel) === subscribed) {
        this.sessions.delete(channel)
        if (!this.closed) this.unsubscribeChannel(channel)
      }
    }
  }

  async whenSubscribed (sessionId: string): Promise<void> {
    await this.sessions.get(this.channelOf(sessionId))?.subscribed
  }

  stats (): BackplaneStats {
    const { published, dropped, publishErrors, received, malformed, reconnects } = this.counters
    return {
      published,
      dropped: { ...dropped },
      publishErrors,
      received,
      malformed,
      reconnects,
      inFlight: this.#inFlight,
      inFlightBytes: this.#inFlightBytes,
      sessions: this.sessions.size,
    }
  }

  abstract ready (): Promise<void>
  abstract close (): Promise<void>

  #wakeDrainWaiters (): void {
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const wake of waiters) wake()
  }

  /** The transport's channel of a session. */
  protected channelOf (sessionId: string): string {
    return channelName(this.keyPrefix, sessionId)
  }

  /** Whether a publish can be handed to the transport now. */
  protected abstract connected (): boolean
  /** Sends one accepted frame; must call `settle(bytes, …)` exactly once when it is done. */
  protected abstract transmit (channel: string, frame: Frame, bytes: number): void
  /** Never rejects: failures are logged; the promise settles either way. */
  protected abstract subscribeChannel (channel: string): Promise<void>
  protected abstract unsubscribeChannel (channel: string): void

  protected settle (bytes: number, err?: unknown, channel?: string): void {
    this.#inFlight--
    this.#inFlightBytes -= bytes
    if (this.#drainWaiters.length > 0 && this.writable) this.#wakeDrainWaiters()
    if (err === undefined) return
    this.counters.publishErrors++
    this.metrics.publishError()
    this.warnThrottled('publish-error', (suppressed) => {
      const wrapped = new BackplanePublishFailedError(channel ?? 'unknown', (err as Error).message, { cause: err })
      this.log.warn({ err: wrapped, channel, suppressed }, 'backplane publish failed')
    })
  }

  /**
   * A message that came in on a session's channel: decoded and delivered,
   * unless it is not an envelope (counted, logged now and then) or this
   * node's own publish coming back.
   */
  protected receiveMessage (session: LocalSession, channel: string, message: Buffer): void {
    if (isFromOrigin(message, this.nodeIdBytes)) return
    const envelope = decodeEnvelope(message)
    if (envelope === null) {
      this.counters.malformed++
      this.warnThrottled('malformed', (suppressed) => {
        this.log.warn({ channel, bytes: message.length, suppressed }, 'backplane ignored a message that is not an envelope')
      })
      return
    }
    const origin = originIdOf(session, envelope.origin)
    this.beforeDeliver(session, envelope, origin)
    this.deliver(session, envelope, origin)
  }

  /** Called with every envelope `receiveMessage` is about to deliver (the cluster backplane counts sequence gaps here). */
  protected beforeDeliver (_session: LocalSession, _envelope: Envelope, _origin: string): void {}

  /**
   * Hands one frame to every local handler of the session: the same Frame and
   * Buffer to each. A throwing handler is logged and does not stop the others
   * (nor reach the transport's parser).
   */
  protected deliver (session: LocalSession, frame: Frame, origin: string): void {
    this.counters.received++
    const handlers = session.handlers
    for (let i = 0; i < handlers.length; i++) {
      try {
        handlers[i]!(frame, origin)
      } catch (err) {
        this.warnThrottled('handler-error', (suppressed) => {
          this.log.error({ err, sessionId: session.sessionId, suppressed }, 'backplane frame handler threw')
        })
      }
    }
  }

  /** Logs through `write` at most once per LOG_EVERY_MS per key, passing how many were skipped. */
  protected warnThrottled (key: string, write: (suppressed: number) => void): void {
    this.#logThrottle.run(key, write)
  }

  #drop (reason: DropReason, sessionId: string): false {
    this.counters.dropped[reason]++
    this.metrics.dropped(reason)
    if (reason !== 'closed') {
      this.warnThrottled(`drop-${reason}`, (suppressed) => {
        this.log.warn({ reason, sessionId, suppressed, inFlight: this.#inFlight }, 'backplane dropped a frame')
      })
    }
    return false
  }
}
