import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { createBackplane, createLogger, shardedChannelName, type Backplane, type BackplaneOptions } from '@streaming-service/core'
import { startRedisCluster, type RedisCluster } from '@streaming-service/testing'
import type { BackplaneCluster, ClusterFactory } from './backplane-contract.js'
import { randomPrefix, waitFor } from './backplane-helper.js'

const silent = createLogger('silent', 'backplane-cluster-test')

/** A Redis Cluster for one test file (3 masters + 3 replicas), with admin connections to its nodes. */
export interface ClusterFixture {
  redis: RedisCluster
  /** An admin connection to one node (PUBSUB SHARDNUMSUB, CLUSTER …), opened on first use. */
  admin (port: number): Redis
  /** PUBSUB SHARDNUMSUB on the master owning the channel's slot. */
  shardNumsub (channel: string): Promise<number>
  /** PUBSUB SHARDCHANNELS pattern on every master, merged and sorted. */
  shardChannels (pattern: string): Promise<string[]>
  /** A backplane node on this cluster, closed at teardown, ready. */
  node (t: Test, prefix: string, options?: Partial<BackplaneOptions>): Promise<Backplane>
}

/** `start` makes the cluster (by default 3+3 with cluster-node-timeout 1000 ms). */
export async function clusterFixture (t: Test, start = async (): Promise<RedisCluster> => await startRedisCluster(t)): Promise<ClusterFixture> {
  const redis = await start()
  const admins = new Map<number, Redis>()
  t.teardown(() => { for (const admin of admins.values()) admin.disconnect() })
  const admin = (port: number): Redis => {
    let connection = admins.get(port)
    if (connection === undefined) {
      connection = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => 200 })
      connection.on('error', () => {})
      admins.set(port, connection)
    }
    return connection
  }
  const masters = async (): Promise<number[]> => (await redis.nodes()).filter((n) => n.role === 'master' && !n.failing && n.slots.length > 0).map((n) => n.port)
  return {
    redis,
    admin,
    async shardNumsub (channel) {
      const owner = await redis.masterOf(await redis.keySlot(channel))
      const reply = await admin(owner.port).call('PUBSUB', 'SHARDNUMSUB', channel) as [string, number]
      return Number(reply[1])
    },
    async shardChannels (pattern) {
      const lists = await Promise.all((await masters()).map(async (port) => await admin(port).call('PUBSUB', 'SHARDCHANNELS', pattern) as string[]))
      return lists.flat().map(String).sort()
    },
    async node (t, prefix, options = {}) {
      const node = createBackplane({ keyPrefix: prefix, logger: silent, clusterNodes: redis.seedList, ...options })
      t.teardown(async () => { await node.close() })
      await waitFor(async () => { await node.ready(); return true }, 15_000, 'cluster backplane node ready')
      return node
    },
  }
}

/** The contract suite's factory for the cluster backplane: every deployment on the one cluster, apart by prefix. */
export function clusterFactory (fixture: ClusterFixture): ClusterFactory {
  return async (t, options): Promise<BackplaneCluster> => {
    const prefix = options.prefix ?? randomPrefix()
    const nodes = await Promise.all(Array.from({ length: options.nodes }, async () => await fixture.node(t, prefix, {
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.registry === undefined ? {} : { metrics: options.registry }),
      ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
    })))
    return {
      prefix,
      nodes,
      channel: (sessionId) => shardedChannelName(prefix, sessionId),
      subscriberCount: async (channel) => await fixture.shardNumsub(channel),
      channels: async (channelPrefix) => await fixture.shardChannels(`${channelPrefix}*`),
    }
  }
}
