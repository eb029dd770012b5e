import { randomBytes } from 'node:crypto'
import t from 'tap'
import { keySlot } from '@streaming-service/core'
import {
  connected, metric, primed, readyStatus, sequenced, sequenceNumbers, startCluster, startRedisCluster, waitFor,
  type Cluster, type RedisCluster, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'
import { sessionChannel } from './redis-cluster-helper.js'

// SPEC §11: control plane and relays A, B, C whose only Redis is a 3+3 Redis
// Cluster this file starts on spare ports (REDIS_CLUSTER_NODES, no REDIS_URL).
let redis: RedisCluster
let cluster: Cluster
t.before(async () => {
  redis = await startRedisCluster(t)
  cluster = await startCluster(t, { relays: 3, redisClusterNodes: redis.seeds })
})

const strictlyIncreasing = (values: number[]): boolean => values.every((v, i) => i === 0 || v > values[i - 1]!)

t.test('24 sessions, publishers on A, operators on B and C: byte-exact and in order, channels spread over the masters', async (t) => {
  const [a, b, c] = cluster.relays as [ServiceProcess, ServiceProcess, ServiceProcess]
  // "listening" comes before the first canaries went round every shard.
  const readyIn = await waitFor('/ready 200 on every process', async () =>
    (await Promise.all([cluster.controlPlane, a, b, c].map(readyStatus))).every((status) => status === 200), 15_000, 50)
  t.pass(`every process ready on the cluster (${readyIn} ms after the last one listened)`)
  const sessions = await Promise.all(Array.from({ length: 24 }, async () => await cluster.createSession()))
  const masters = new Set(await Promise.all(sessions.map(async (s) => (await redis.masterOf(keySlot(sessionChannel(cluster, s.session_id)))).port)))
  t.ok(masters.size >= 2, `the 24 sessions' channels are on ${masters.size} masters`)

  const streams = await Promise.all(sessions.map(async (session) => {
    const operators = [
      await connected(t, cluster.wsUrl(b, session.session_id, 'op-b')),
      await connected(t, cluster.wsUrl(c, session.session_id, 'op-c')),
    ]
    const publisher = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
    await primed(publisher, operators)
    return { publisher, operators }
  }))
  const sent = streams.map(() => [] as Array<{ data: Buffer, binary: boolean }>)
  for (let i = 0; i < 40; i++) {
    await Promise.all(streams.map(async ({ publisher }, s) => {
      const binary = i % 4 !== 0
      const data = binary ? randomBytes(1 + ((i * 7919 + s * 104_729) % (16 * 1024))) : Buffer.from(`session ${s} text ${i} ✓`)
      sent[s]!.push({ data, binary })
      await publisher.send(binary ? data : data.toString())
    }))
  }
  let exact = 0
  for (const [s, { operators }] of streams.entries()) {
    for (const operator of operators) {
      const received = await operator.waitForMessages(40, 20_000)
      const mismatch = received.findIndex((m, k) => m.binary !== sent[s]![k]!.binary || !m.data.equals(sent[s]![k]!.data))
      if (mismatch === -1 && operator.messages.length === 40) exact++
      else t.fail(`session ${s}: message ${mismatch} differs or extra messages (${operator.messages.length})`)
    }
  }
  t.equal(exact, 48, 'all 48 operators got their 40 messages byte for byte, in order, with their type')
})

t.test('a live session\'s slot is moved to another master: delivery continues, every lost frame is counted as a gap', async (t) => {
  const [a, b, c] = cluster.relays as [ServiceProcess, ServiceProcess, ServiceProcess]
  const session = await cluster.createSession()
  const slot = keySlot(sessionChannel(cluster, session.session_id))
  const operators = [await connected(t, cluster.wsUrl(b, session.session_id, 'op-b')), await connected(t, cluster.wsUrl(c, session.session_id, 'op-c'))] as [TestSocket, TestSocket]
  const publisher = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, operators)
  const gapsBefore = await Promise.all([b, c].map(async (relay) => await metric(relay, 'backplane_sequence_gaps_total')))
  const resubscribesBefore = await Promise.all([b, c].map(async (relay) => await metric(relay, 'backplane_resubscribes_total')))
  const stream = sequenced(publisher, 100)
  t.teardown(() => stream.stop())
  await waitFor('the stream on B and C', () => operators.every((o) => sequenceNumbers(o).length >= 50))

  const from = await redis.masterOf(slot)
  const to = (await redis.nodes()).find((n) => n.role === 'master' && !n.failing && n.slots.length > 0 && n.id !== from.id)!
  await redis.moveSlot(slot, to.port)
  const movedAt = stream.sent
  await waitFor('200 more messages on B and C', () => operators.every((o) => sequenceNumbers(o).filter((n) => n > movedAt).length >= 200), 15_000)
  stream.stop()
  const total = stream.sent
  await waitFor('the last message on B and C', () => operators.every((o) => sequenceNumbers(o).at(-1) === total - 1), 5000)
  t.equal((await redis.masterOf(slot)).port, to.port, `slot ${slot} moved from ${from.port} to ${to.port}`)
  for (const [i, operator] of operators.entries()) {
    const relay = [b, c][i]!
    const received = sequenceNumbers(operator)
    const lost = total - received.length
    t.ok(strictlyIncreasing(received), `${'BC'[i]}: in order, none duplicated`)
    const gaps = await metric(relay, 'backplane_sequence_gaps_total') - gapsBefore[i]!
    const resubscribed = await metric(relay, 'backplane_resubscribes_total') - resubscribesBefore[i]!
    t.ok(gaps >= lost, `${'BC'[i]}: no silent loss — ${lost} messages lost, ${gaps} frames counted as gaps`)
    t.ok(resubscribed >= 1, `${'BC'[i]}: resubscribed on the new master (${resubscribed})`)
    t.equal(operator.socket.readyState, operator.socket.OPEN, `${'BC'[i]}: the operator of the opaque stream stays`)
  }
  await redis.moveSlot(slot, from.port)
})
