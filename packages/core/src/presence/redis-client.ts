import { Cluster, Redis } from 'ioredis'
import { reconnectDelay } from '../redis/connection.js'
import type { EntryWriter } from './redis-entries.js'

/** A command unanswered this long fails (a half-open connection must not hang reads). */
const COMMAND_TIMEOUT_MS = 2000

/** Where presence lives: one Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES). */
export type PresenceClient = Redis | Cluster

/** Commands sent together and settled together: a pipeline on one Redis. */
export interface PresenceBatch extends EntryWriter {
  zadd (key: string, ...scoresAndMembers: Array<number | string>): this
  pexpire (key: string, ms: number): this
  exec (): Promise<Array<[Error | null, unknown]> | null>
}

/**
 * On a cluster, the keys of one refresh live on every shard, and an ioredis
 * pipeline must stay on one node: the commands go out one by one instead,
 * auto-pipelined per node by the client.
 */
class ClusterBatch implements PresenceBatch {
  readonly #cluster: Cluster
  readonly #sent: Array<Promise<[Error | null, unknown]>> = []
  constructor (cluster: Cluster) { this.#cluster = cluster }
  #track (command: Promise<unknown>): this {
    this.#sent.push(command.then((reply) => [null, reply], (err: Error) => [err, null]))
    return this
  }

  zadd (key: string, ...scoresAndMembers: Array<number | string>): this { return this.#track(this.#cluster.zadd(key, ...scoresAndMembers)) }
  pexpire (key: string, ms: number): this { return this.#track(this.#cluster.pexpire(key, ms)) }
  zremrangebyscore (key: string, min: number | string, max: number | string): this { return this.#track(this.#cluster.zremrangebyscore(key, min, max)) }
  async exec (): Promise<Array<[Error | null, unknown]>> { return await Promise.all(this.#sent) }
}

export function presenceBatch (client: PresenceClient): PresenceBatch {
  return client instanceof Cluster ? new ClusterBatch(client) : client.pipeline() as unknown as PresenceBatch
}

/**
 * The presence connection: offline queue off, so a write that cannot be sent
 * now fails at once and is never replayed late; in-flight commands fail with
 * the socket (maxRetriesPerRequest 0).
 */
export function presenceClient (target: { url: string } | { nodes: ReadonlyArray<{ host: string, port: number }> }, connectionName: string): PresenceClient {
  const options = {
    connectionName,
    connectTimeout: 3000,
    commandTimeout: COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  }
  if ('url' in target) return new Redis(target.url, { ...options, retryStrategy: reconnectDelay, enableReadyCheck: true })
  return new Cluster(target.nodes.map(({ host, port }) => ({ host, port })), {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: options,
  })
}
