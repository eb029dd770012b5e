import type { Logger } from '../logger.js'

export type PresenceRole = 'publisher' | 'operator'

/** Removes the entry; idempotent. */
export type Leave = () => void

/**
 * Who is connected to a session right now, across every node of a deployment
 * (SPEC §3: `publisher_online` of GET /sessions/:id, `online` of GET
 * /sessions/:id/operators). An entry is one WebSocket connection: a user may
 * hold several, on several nodes, and stays online until the last one leaves.
 *
 * Guarantee: an entry is visible to every node from `enter()` (once the write
 * reaches the store) until `leave()`, or — when its node dies or loses the
 * store for good — until at most `ttlMs` after that node's last refresh. It
 * is presence, not admission: never use it to decide who may connect.
 */
export interface Presence {
  readonly kind: 'memory' | 'redis'
  /**
   * Marks one connection online (a user may have several connections, on
   * several nodes) until `leave()` or until this node stops refreshing (dies):
   * then it expires after `ttlMs`. Never throws, never blocks (Redis writes
   * are fire-and-forget with errors logged and counted).
   */
  enter (sessionId: string, role: PresenceRole, userId: string): Leave
  /** Whether any publisher connection of the session is online on any node. */
  publisherOnline (sessionId: string): Promise<boolean>
  /** user ids of operators with at least one online connection, on any node. */
  onlineOperators (sessionId: string): Promise<Set<string>>
  /**
   * Takes this node's entries down (Redis: best effort, bounded) and releases
   * every connection and timer. Afterwards `enter()` is a no-op and reads
   * reject with SS_BACKPLANE_UNAVAILABLE.
   */
  close (): Promise<void>
}

export interface PresenceOptions {
  /** REDIS_URL; without it (and without clusterNodes) presence is in-process (a single node). */
  redisUrl?: string
  /** REDIS_CLUSTER_NODES: presence on the Redis Cluster; wins over redisUrl. */
  clusterNodes?: ReadonlyArray<{ host: string, port: number }>
  /** REDIS_KEY_PREFIX: keys are `<keyPrefix>presence:<sessionId>`. */
  keyPrefix: string
  /** This node's id (the backplane's node id): part of every entry, so it must not contain ':'. */
  nodeId: string
  logger: Logger
  /** How long a dead node's entries stay visible (default 15000 ms). */
  ttlMs?: number
  /** How often a live node rewrites its entries (default ttlMs / 3, must be below ttlMs). */
  refreshMs?: number
}

export const DEFAULT_PRESENCE_TTL_MS = 15_000
