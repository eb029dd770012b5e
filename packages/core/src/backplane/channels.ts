/**
 * Every Redis channel the backplane uses is named here, under the deployment's
 * REDIS_KEY_PREFIX, so several deployments (or test runs) can share one Redis
 * and `PUBSUB CHANNELS <prefix>session:*` lists exactly one deployment's
 * live sessions.
 */
export function channelName (prefix: string, sessionId: string): string {
  return `${prefix}session:${sessionId}`
}

/** The per-node channel of the readiness canary: only its own node subscribes. */
export function canaryChannelName (prefix: string, nodeId: string): string {
  return `${prefix}canary:${nodeId}`
}

/**
 * A session's channel on Redis Cluster: the session id is the hash tag, so the
 * channel and the session's presence key live in one slot, on one shard.
 */
export function shardedChannelName (prefix: string, sessionId: string): string {
  return `${prefix}session:{${sessionId}}`
}

/** A node's readiness canary on one shard: `tag` is picked so the channel's slot is on that shard. */
export function shardCanaryChannelName (prefix: string, nodeId: string, tag: string): string {
  return `${prefix}canary:${nodeId}:{${tag}}`
}
