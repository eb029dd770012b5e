import { randomUUID } from 'node:crypto'
import { streamUrl, type CreatedSession } from '@streaming-service/protocol'
import { createTestDatabase, type TestDatabase } from './database.js'
import { runCli, startService, type ServiceProcess } from './process.js'

interface Teardown { teardown (fn: () => unknown): void }

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface Cluster {
  db: TestDatabase
  /** Environment shared by every process of the cluster (database, Redis, prefix). */
  env: Record<string, string>
  controlPlane: ServiceProcess
  relays: ServiceProcess[]
  /** Starts one more relay with the cluster's environment. */
  addRelay (env?: Record<string, string>): Promise<ServiceProcess>
  createSession (clientId?: string): Promise<CreatedSession>
  /** `Authorization: Bearer <the first of API_KEYS>` when the cluster runs with AUTH_MODE=token, else nothing. */
  authHeaders: Record<string, string>
  /** ws://127.0.0.1:<relay port>/ws/stream/<session>/<user>[?stream_key=…] */
  wsUrl (relay: ServiceProcess, sessionId: string, userId: string, streamKey?: string): string
}

export interface ClusterOptions {
  relays?: number
  env?: Record<string, string>
  /** REDIS_URL (default: the local Redis). */
  redisUrl?: string
  /** REDIS_CLUSTER_NODES (e.g. RedisCluster#seeds): the processes use that Redis Cluster only, no REDIS_URL. */
  redisClusterNodes?: string
}

/**
 * The split deployment on this machine: a control plane and `relays` relay
 * processes on free ports, sharing a fresh database and the local Redis (or
 * a Redis Cluster) under a key prefix of their own. Everything is killed at teardown.
 */
export async function startCluster (t: Teardown, options: ClusterOptions = {}): Promise<Cluster> {
  const db = await createTestDatabase(t, 'cluster')
  const redis: Record<string, string> = options.redisClusterNodes === undefined
    ? { REDIS_URL: options.redisUrl ?? TEST_REDIS_URL }
    : { REDIS_CLUSTER_NODES: options.redisClusterNodes }
  const env: Record<string, string> = {
    ...db.env,
    ...redis,
    REDIS_KEY_PREFIX: `sstest:${randomUUID().slice(0, 8)}:`,
    SHUTDOWN_DRAIN: '200ms',
    LOG_LEVEL: 'info',
    ...options.env,
  }
  const apiKey = (env as Record<string, string | undefined>).API_KEYS?.split(',')[0]?.trim()
  const authHeaders: Record<string, string> = apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }
  const migrated = await runCli(['migrate', 'up'], env)
  if (migrated.code !== 0) throw new Error(`migrate up failed: ${migrated.stderr}`)
  const [controlPlane, ...relays] = await Promise.all([
    startService(t, ['control-plane'], env),
    ...Array.from({ length: options.relays ?? 3 }, async () => await startService(t, ['relay'], env)),
  ])
  return {
    db,
    env,
    controlPlane: controlPlane!,
    relays,
    authHeaders,
    addRelay: async (extra = {}) => await startService(t, ['relay'], { ...env, ...extra }),
    async createSession (clientId = randomUUID()) {
      const res = await fetch(`${controlPlane!.url}/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...authHeaders },
        body: JSON.stringify({ client_id: clientId }),
      })
      if (res.status !== 201) throw new Error(`POST /sessions: ${res.status} ${await res.text()}`)
      return await res.json() as CreatedSession
    },
    wsUrl (relay, sessionId, userId, streamKey) {
      return streamUrl({ base: `ws://127.0.0.1:${relay.port}`, sessionId, userId, ...(streamKey === undefined ? {} : { streamKey }) })
    },
  }
}
