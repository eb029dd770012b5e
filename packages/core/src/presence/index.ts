import { MemoryPresence } from './memory.js'
import { RedisPresence } from './redis.js'
import { DEFAULT_PRESENCE_TTL_MS, type Presence, type PresenceOptions } from './types.js'

export type { Leave, Presence, PresenceOptions, PresenceRole } from './types.js'

/** The one place that chooses where presence lives: Redis Cluster (REDIS_CLUSTER_NODES), Redis (REDIS_URL), or this process. */
export function createPresence (options: PresenceOptions): Presence {
  const { redisUrl, clusterNodes, keyPrefix, nodeId } = options
  const ttlMs = options.ttlMs ?? DEFAULT_PRESENCE_TTL_MS
  const refreshMs = options.refreshMs ?? Math.floor(ttlMs / 3)
  if (!Number.isInteger(ttlMs) || ttlMs < 3) throw new RangeError(`presence ttlMs must be an integer >= 3, got ${ttlMs}`)
  if (!Number.isInteger(refreshMs) || refreshMs < 1 || refreshMs >= ttlMs) {
    throw new RangeError(`presence refreshMs must be an integer from 1 to ttlMs - 1 (${ttlMs - 1}), got ${refreshMs}`)
  }
  if (nodeId === '' || nodeId.includes(':')) throw new RangeError(`presence nodeId must be non-empty and without ':', got ${JSON.stringify(nodeId)}`)
  const cluster = clusterNodes !== undefined && clusterNodes.length > 0
  if (!cluster && (redisUrl === undefined || redisUrl === '')) return new MemoryPresence()
  const logger = options.logger.child({ component: 'presence', nodeId })
  const target = cluster ? { nodes: clusterNodes } : { url: redisUrl! }
  return new RedisPresence({ target, keyPrefix, nodeId, logger, ttlMs, refreshMs })
}
