import { newNodeId } from './envelope.js'
import { MemoryBackplane, type MemoryBus } from './memory.js'
import { RedisBackplane, type RedisBackplaneOptions } from './redis.js'
import { ClusterBackplane, type ClusterBackplaneOptions } from './cluster.js'
import type { BackplaneBaseOptions } from './base.js'
import type { Backplane } from './types.js'

export type { Backplane, BackplaneKind, BackplaneStats, DropReason, Frame, FrameHandler, FrameKind, Unsubscribe } from './types.js'
export { dropReasons, MAX_FRAME_KIND, MIN_FRAME_KIND } from './types.js'
export { channelName, canaryChannelName, shardCanaryChannelName, shardedChannelName } from './channels.js'
export { keySlot, SLOT_COUNT } from './slot.js'
export {
  decodeEnvelope, encodeEnvelope, ENVELOPE_HEADER_BYTES, ENVELOPE_VERSION, isEncodable, isNodeId, newNodeId,
  nodeIdFromBytes, nodeIdToBytes, type Envelope,
} from './envelope.js'
export { DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, type BackplaneBaseOptions } from './base.js'
export { createBackplaneMetrics, type BackplaneMetrics } from './metrics.js'
export { MemoryBackplane, MemoryBus, type MemoryBackplaneOptions } from './memory.js'
export { RedisBackplane, type RedisBackplaneOptions } from './redis.js'
export { ClusterBackplane, type ClusterBackplaneOptions } from './cluster.js'
export { reconnectDelay } from '../redis/connection.js'

export interface BackplaneOptions extends BackplaneBaseOptions {
  /** REDIS_URL; without it the backplane is in-process (a single node, or nodes sharing `bus`). */
  redisUrl?: string
  /** In-process only: the bus shared by several nodes of one process (tests). */
  bus?: MemoryBus
  /** REDIS_CLUSTER_NODES: seeds of a Redis Cluster; when set, it wins over `redisUrl` (sharded pub/sub). */
  clusterNodes?: ReadonlyArray<{ host: string, port: number }>
  /** Redis only: canary and reconnect tuning (tests shorten them). */
  redis?: Pick<RedisBackplaneOptions, 'canaryIntervalMs' | 'canaryStaleMs' | 'healAfterMs' | 'connectTimeoutMs'>
  /** Redis Cluster only: the same tuning, plus how often the slot map is read. */
  cluster?: Pick<ClusterBackplaneOptions, 'canaryIntervalMs' | 'canaryStaleMs' | 'healAfterMs' | 'connectTimeoutMs' | 'topologyIntervalMs'>
}

/**
 * The one place that chooses the transport: Redis Cluster when
 * REDIS_CLUSTER_NODES is set, Redis when REDIS_URL is, in-process otherwise.
 */
export function createBackplane (options: BackplaneOptions): Backplane {
  const { redisUrl, clusterNodes, bus, redis, cluster, ...rest } = options
  const nodeId = rest.nodeId ?? newNodeId()
  const logger = options.logger.child({ component: 'backplane', nodeId })
  const common = { ...rest, nodeId, logger }
  if (clusterNodes !== undefined && clusterNodes.length > 0) {
    return new ClusterBackplane({ ...common, ...cluster, nodes: clusterNodes })
  }
  if (redisUrl === undefined || redisUrl === '') {
    return new MemoryBackplane({ ...common, ...(bus === undefined ? {} : { bus }) })
  }
  return new RedisBackplane({ ...common, ...redis, url: redisUrl })
}
