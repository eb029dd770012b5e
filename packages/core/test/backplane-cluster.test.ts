import { randomUUID } from 'node:crypto'
import t from 'tap'
import { Registry } from 'prom-client'
import { ClusterBackplane, createBackplane, createLogger, createPresence, keySlot, shardedChannelName, type Presence } from '@streaming-service/core'
import { backplaneContract } from './backplane-contract.js'
import { clusterFactory, clusterFixture } from './backplane-cluster-helper.js'
import { randomPrefix, waitFor } from './backplane-helper.js'

// The backplane contract on Redis Cluster (sharded pub/sub), on a 3+3 cluster
// this file starts on spare ports, plus what only the cluster backplane has.

const fixture = await clusterFixture(t)

backplaneContract(t, 'redis-cluster', clusterFactory(fixture))

t.test('REDIS_CLUSTER_NODES selects the cluster backplane, which wins over REDIS_URL', async (t) => {
  const logger = createLogger('silent', 'test')
  const node = createBackplane({ keyPrefix: randomPrefix(), logger, clusterNodes: fixture.redis.seedList, redisUrl: 'redis://127.0.0.1:1' })
  t.teardown(async () => { await node.close() })
  t.ok(node instanceof ClusterBackplane)
  t.equal(node.kind, 'redis-cluster')
})

t.test('slots are computed as Redis does; a session channel carries the session id as hash tag', async (t) => {
  const sessionId = randomUUID()
  const names = [shardedChannelName('ss:', sessionId), `ss:presence:{${sessionId}}`, 'plain-key', '{}empty-tag', 'a{b}c{d}', 'é✓{x']
  for (const name of names) t.equal(keySlot(name), await fixture.redis.keySlot(name), `slot of ${name}`)
  t.equal(keySlot(shardedChannelName('ss:', sessionId)), keySlot(`ss:presence:{${sessionId}}`), 'channel and presence key share the slot')
})

t.test('sessions spread over the masters; each node listens to one canary per master, on a slot that master owns', async (t) => {
  const prefix = randomPrefix('spread')
  const node = await fixture.node(t, prefix)
  const masters = (await fixture.redis.nodes()).filter((n) => n.role === 'master' && n.slots.length > 0)
  const canaries = await fixture.shardChannels(`${prefix}canary:*`)
  t.equal(canaries.length, masters.length, `one canary channel per master (${canaries.length})`)
  const owners = new Set(await Promise.all(canaries.map(async (channel) => (await fixture.redis.masterOf(keySlot(channel))).port)))
  t.equal(owners.size, masters.length, 'each on another master')
  const sessions = Array.from({ length: 24 }, () => randomUUID())
  for (const sessionId of sessions) node.subscribe(sessionId, () => {})
  await Promise.all(sessions.map(async (sessionId) => { await node.whenSubscribed(sessionId) }))
  const used = new Set<number>()
  for (const sessionId of sessions) {
    const channel = shardedChannelName(prefix, sessionId)
    const owner = await fixture.redis.masterOf(keySlot(channel))
    used.add(owner.port)
    const count = await fixture.admin(owner.port).call('PUBSUB', 'SHARDNUMSUB', channel) as [string, number]
    if (Number(count[1]) !== 1) t.fail(`${channel} not subscribed on its master ${owner.port}`)
  }
  t.ok(used.size >= 2, `24 session channels on ${used.size} masters`)
  const registry = new Registry()
  const measured = await fixture.node(t, prefix, { metrics: registry })
  await waitFor(async () => /backplane_canary_round_trip_seconds \d/.test(await registry.metrics()), 5000, 'a canary round trip on /metrics')
  t.pass(`${measured.kind}: the canary round trip is on the registry`)
})

t.test('presence on the cluster: nodes share one view; a session\'s key carries its hash tag and sits on its channel\'s shard', async (t) => {
  const prefix = randomPrefix('presence')
  const nodes = [0, 1].map(() => {
    const presence = createPresence({ clusterNodes: fixture.redis.seedList, keyPrefix: prefix, nodeId: randomUUID(), logger: createLogger('silent', 'test'), ttlMs: 3000 })
    t.teardown(async () => { await presence.close() })
    return presence
  }) as [Presence, Presence]
  const sessions = Array.from({ length: 12 }, () => randomUUID())
  for (const [i, sessionId] of sessions.entries()) {
    nodes[0].enter(sessionId, 'publisher', 'pub')
    nodes[1].enter(sessionId, 'operator', `op-${i}`)
  }
  await waitFor(async () => {
    const seen = await Promise.all(sessions.map(async (sessionId) => await nodes[1].publisherOnline(sessionId)))
    return seen.every(Boolean)
  }, 10_000, 'every publisher seen from the other node')
  t.same([...await nodes[0].onlineOperators(sessions[3]!)], ['op-3'], 'operators of another node')
  const shards = new Set<number>()
  for (const sessionId of sessions) {
    const key = `${prefix}presence:{${sessionId}}`
    const owner = await fixture.redis.masterOf(keySlot(key))
    shards.add(owner.port)
    t.equal(await fixture.admin(owner.port).zcard(key), 2, `${key} on the master of its slot`)
    t.equal(keySlot(key), keySlot(shardedChannelName(prefix, sessionId)), 'the slot of the session\'s channel')
  }
  // Entries made before the first connection were written by a refresh: one batch over every shard.
  t.ok(shards.size >= 2, `12 sessions' keys on ${shards.size} masters, written without cross-slot pipelines`)
})
