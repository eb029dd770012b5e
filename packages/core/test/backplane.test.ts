import t from 'tap'
import { Registry } from 'prom-client'
import { channelName, createBackplane, createLogger, MemoryBackplane, MemoryBus, RedisBackplane, type Backplane } from '@streaming-service/core'
import { backplaneContract, type ClusterFactory, type ClusterOptions } from './backplane-contract.js'
import {
  activeResourceCounts, adminClient, numsub, pubsubChannels, randomPrefix, sleep, TEST_REDIS_URL, waitFor,
} from './backplane-helper.js'

// One contract, every implementation (core/src/backplane/types.ts).

const silent = createLogger('silent', 'backplane-test')

async function started (t: Parameters<ClusterFactory>[0], options: ClusterOptions, redisUrl?: string, bus?: MemoryBus): Promise<{ prefix: string, nodes: Backplane[] }> {
  const prefix = options.prefix ?? randomPrefix()
  const nodes = Array.from({ length: options.nodes }, () => createBackplane({
    keyPrefix: prefix,
    logger: options.logger ?? silent,
    ...(redisUrl === undefined ? {} : { redisUrl }),
    ...(bus === undefined ? {} : { bus }),
    ...(options.registry === undefined ? {} : { metrics: options.registry }),
    ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
  }))
  t.teardown(async () => { await Promise.all(nodes.map(async (node) => { await node.close() })) })
  await Promise.all(nodes.map(async (node) => await waitFor(async () => { await node.ready(); return true }, 10_000, 'node ready')))
  return { prefix, nodes }
}

// Every in-process cluster of this file shares one bus, as every Redis
// cluster shares one Redis: prefixes are what keeps them apart.
const bus = new MemoryBus()
const memoryCluster: ClusterFactory = async (t, options) => {
  const { prefix, nodes } = await started(t, options, undefined, bus)
  return {
    prefix,
    nodes,
    channel: (sessionId) => channelName(prefix, sessionId),
    subscriberCount: async (channel) => bus.subscribers(channel),
    channels: async (channelPrefix) => bus.channels(channelPrefix),
  }
}

const redisCluster: ClusterFactory = async (t, options) => {
  const admin = await adminClient(t)
  const { prefix, nodes } = await started(t, options, TEST_REDIS_URL)
  return {
    prefix,
    nodes,
    channel: (sessionId) => channelName(prefix, sessionId),
    subscriberCount: async (channel) => await numsub(admin, channel),
    channels: async (channelPrefix) => await pubsubChannels(admin, `${channelPrefix}*`),
  }
}

backplaneContract(t, 'memory', memoryCluster)
backplaneContract(t, 'redis', redisCluster)

t.test('createBackplane is the one place choosing the transport', async (t) => {
  const memory = createBackplane({ keyPrefix: 'ss:', logger: silent })
  t.ok(memory instanceof MemoryBackplane, 'no REDIS_URL: in-process')
  t.equal(memory.kind, 'memory')
  const empty = createBackplane({ keyPrefix: 'ss:', logger: silent, redisUrl: '' })
  t.equal(empty.kind, 'memory', 'an empty REDIS_URL is no REDIS_URL')
  const registry = new Registry()
  const redis = createBackplane({ keyPrefix: randomPrefix(), logger: silent, redisUrl: TEST_REDIS_URL, metrics: registry, nodeId: '7A9E3C52-0000-4000-8000-00000000ABCD' })
  t.ok(redis instanceof RedisBackplane, 'REDIS_URL: Redis')
  t.equal(redis.nodeId, '7a9e3c52-0000-4000-8000-00000000abcd', 'a given node id is kept (lower-cased)')
  await Promise.all([memory.close(), empty.close(), redis.close()])
  t.throws(() => createBackplane({ keyPrefix: 'ss:', logger: silent, nodeId: 'node-1' }), RangeError, 'node ids are UUIDs')
  const text = await registry.metrics()
  for (const name of ['backplane_frames_dropped_total', 'backplane_publish_errors_total', 'backplane_reconnects_total', 'backplane_canary_round_trip_seconds']) {
    t.match(text, `# TYPE ${name}`, `${name} is on the registry passed in`)
  }
})

t.test('close() leaves no socket or timer behind (the process can exit)', async (t) => {
  const count = activeResourceCounts
  // Earlier tests' connections may still be shutting down: start from a settled count.
  await waitFor(() => count().SimpleShutdownWrap === undefined, 3000, 'earlier sockets closed')
  await sleep(200)
  const before = count()
  const nodes = [
    createBackplane({ keyPrefix: randomPrefix(), logger: silent, redisUrl: TEST_REDIS_URL }),
    createBackplane({ keyPrefix: randomPrefix(), logger: silent, bus }),
  ]
  await Promise.all(nodes.map(async (node) => await waitFor(async () => { await node.ready(); return true }, 10_000, 'ready')))
  for (const node of nodes) node.subscribe('s1', () => {})
  t.ok((count().TCPSocketWrap ?? 0) >= (before.TCPSocketWrap ?? 0) + 2, 'the Redis node holds its two connections')
  await Promise.all(nodes.map(async (node) => { await node.close() }))
  await waitFor(() => {
    const after = count()
    return (after.TCPSocketWrap ?? 0) === (before.TCPSocketWrap ?? 0) && (after.Timeout ?? 0) <= (before.Timeout ?? 0)
  }, 3000, 'sockets and timers released')
  t.pass('sockets and timers are back to where they were')
})
