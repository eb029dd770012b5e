/**
 * What a message on the backplane is, as a byte (1–255; 0 is reserved). The
 * backplane carries kinds without knowing them: their meaning belongs to whoever
 * publishes and subscribes (the relay's wire format).
 */
export type FrameKind = number

export const MIN_FRAME_KIND = 1
export const MAX_FRAME_KIND = 255

/**
 * One message of a session. `payload` is never JSON-encoded, base64'd or
 * copied per subscriber: every local handler of a node receives the same
 * Frame object and the same Buffer, so handlers must treat both as read-only.
 * A received payload may be a view into a larger buffer of socket data: a
 * handler that keeps it beyond the call (a late-join cache) should copy it
 * (`Buffer.from(payload)`), or it keeps the whole chunk alive.
 * `seq` is the publisher's per-session sequence number (a non-negative safe
 * integer); the backplane carries it, it does not assign it.
 */
export interface Frame {
  readonly kind: FrameKind
  readonly seq: number
  readonly payload: Buffer
  /** When the publisher's node received it (ms since the epoch), for the relay latency metric. */
  readonly sentAt?: number
}

/** `origin` is the node id (UUID) of the node that published the frame. */
export type FrameHandler = (frame: Frame, origin: string) => void

/** Idempotent: calling it twice removes the handler once. */
export type Unsubscribe = () => void

/**
 * Why a frame was not handed to the transport:
 * - `backpressure`: the bound of publishes in flight (count or bytes) was reached;
 * - `disconnected`: the publishing connection is not up;
 * - `closed`: the backplane was closed;
 * - `invalid`: the frame cannot be encoded (bad kind or seq).
 * A publish the transport accepted and then failed is a publish error instead.
 */
export type DropReason = 'backpressure' | 'disconnected' | 'closed' | 'invalid'

export const dropReasons: readonly DropReason[] = ['backpressure', 'disconnected', 'closed', 'invalid']

export interface BackplaneStats {
  /** Frames handed to the transport. */
  published: number
  /** Frames dropped by `publish`, by reason. */
  dropped: Record<DropReason, number>
  /** Publishes the transport accepted and then failed (connection lost, timeout…). */
  publishErrors: number
  /** Frames from other nodes handed to local handlers (once per frame, not per handler). */
  received: number
  /** Inbound messages that were not a valid envelope. */
  malformed: number
  /** Times a connection came back after being lost. */
  reconnects: number
  /** Publishes in flight now, and their bytes. */
  inFlight: number
  inFlightBytes: number
  /** Sessions with at least one local handler. */
  sessions: number
}

/** In-process, one Redis (pub/sub), or Redis Cluster (sharded pub/sub). */
export type BackplaneKind = 'memory' | 'redis' | 'redis-cluster'

/**
 * The backplane of the relay cluster: one channel per session, fanning frames
 * out from the node of a session's publisher to every other node that has
 * local subscribers of that session.
 *
 * Guarantees — and only these:
 * - **At most once.** A frame is delivered to each subscribed node zero or one
 *   time. Frames published while the transport is down, beyond the in-flight
 *   bound, or while a node is (re)subscribing are lost, never queued for later:
 *   a live stream has no use for stale frames.
 * - **Ordered per publisher.** Frames one node publishes on one session reach
 *   every other node in publish order (gaps possible, never reordering).
 *   Nothing is promised about the relative order of two publishers.
 * - **No history.** A subscriber sees only what is published after its
 *   subscription is established; late-join state is the relay's business.
 * - **A node never receives its own publications**: local delivery is the
 *   hub's job and never takes a round trip through the backplane.
 *
 * `publish` never blocks and never throws. Subscriptions are reference-counted
 * per session on the node: the transport subscribes with the first local
 * handler and unsubscribes after the last one leaves.
 */
export interface Backplane {
  /** This node's id (a UUID), carried as the origin of every frame it publishes. */
  readonly nodeId: string
  readonly kind: BackplaneKind
  /**
   * Hands the frame to the transport and returns at once. Returns false when
   * the frame was dropped (counted by reason). The backplane takes ownership
   * of `frame.payload`: the caller must not modify it afterwards.
   */
  publish (sessionId: string, frame: Frame): boolean
  subscribe (sessionId: string, handler: FrameHandler): Unsubscribe
  /**
   * Resolves once the transport confirmed this node's subscription to the
   * session's channel (at once for the in-process backplane, or when there is
   * no subscription). Frames published after that reach this node; a request
   * sent earlier may be answered before the subscription exists.
   */
  whenSubscribed (sessionId: string): Promise<void>
  /**
   * False while publishes in flight are past half their bound: a source that
   * can wait (a publisher's socket) should pause until `whenWritable()`
   * resolves, so bursts get TCP backpressure instead of drops.
   */
  readonly writable: boolean
  whenWritable (): Promise<void>
  /**
   * Resolves when the backplane works end to end (for Redis: both connections
   * up and a canary published by this node came back through its own
   * subscription recently); rejects with `SS_BACKPLANE_UNAVAILABLE` saying
   * what is wrong otherwise. Meant for `/ready`.
   */
  ready (): Promise<void>
  stats (): BackplaneStats
  /** Stops delivery and releases every connection and timer. Idempotent. */
  close (): Promise<void>
}
