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
