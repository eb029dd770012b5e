import { newNodeId } from './envelope.js'
import { MemoryBackplane, type MemoryBus } from './memory.js'
import { RedisBackplane, type RedisBackplaneOptions } from './redis.js'
import type { BackplaneBaseOptions } from './base.js'
import type { Backplane } from './types.js'

export type { Backplane, BackplaneStats, DropReason, Frame, FrameHandler, FrameKind, Unsubscribe } from './types.js'
export { dropReasons, MAX_FRAME_KIND, MIN_FRAME_KIND } from './types.js'
export { channelName, canaryChannelName } from './channels.js'
export {
  decodeEnvelope, encodeEnvelope, ENVELOPE_HEADER_BYTES, ENVELOPE_VERSION, isEncodable, isNodeId, newNodeId,
  nodeIdFromBytes, nodeIdToBytes, type Envelope,
} from './envelope.js'
export { DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, type BackplaneBaseOptions } from './base.js'
export { createBackplaneMetrics, type BackplaneMetrics } from './metrics.js'
export { MemoryBackplane, MemoryBus, type MemoryBackplaneOptions } from './memory.js'
export { RedisBackplane, type RedisBackplaneOptions } from './redis.js'
export { reconnectDelay } from '../redis/connection.js'

export interface BackplaneOptions extends BackplaneBaseOptions {
  /** REDIS_URL; without it the backplane is in-process (a single node, or nodes sharing `bus`). */
  redisUrl?: string
  /** In-process only: the bus shared by several nodes of one process (tests). */
  bus?: MemoryBus
  /** Redis only: canary and reconnect tuning (tests shorten them). */
  redis?: Pick<RedisBackplaneOptions, 'canaryIntervalMs' | 'canaryStaleMs' | 'healAfterMs' | 'connectTimeoutMs'>
}

/** The one place that chooses the transport: Redis when REDIS_URL is set, in-process otherwise. */
export function createBackplane (options: BackplaneOptions): Backplane {
  const { redisUrl, bus, redis, ...rest } = options
  const nodeId = rest.nodeId ?? newNodeId()
  const logger = options.logger.child({ component: 'backplane', nodeId })
  const common = { ...rest, nodeId, logger }
  if (redisUrl === undefined || redisUrl === '') {
    return new MemoryBackplane({ ...common, ...(bus === undefined ? {} : { bus }) })
  }
  return new RedisBackplane({ ...common, ...redis, url: redisUrl })
}
