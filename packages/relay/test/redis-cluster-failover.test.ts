// tap: run alone
import t from 'tap'
import { Redis } from 'ioredis'
import { keySlot } from '@streaming-service/core'
import {
  connected, metric, openSocket, primed, readyStatus, sequenced, sequenceNumbers, startCluster, startRedisCluster, waitFor,
  type Cluster, type RedisCluster, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'
import { clusterNumbers, EBML_MAGIC, sessionChannel, webmStream } from './redis-cluster-helper.js'

// SPEC §11 failover: the master owning a streaming session's channel is killed
// -9; its replica is promoted by the cluster itself (cluster-node-timeout
// 1000 ms, no manual CLUSTER FAILOVER). Relays A, B, C use only this cluster.
let redis: RedisCluster
let cluster: Cluster
t.before(async () => {
  redis = await startRedisCluster(t, { nodeTimeoutMs: 1000 })
  cluster = await startCluster(t, { relays: 3, redisClusterNodes: redis.seeds })
})

const strictlyIncreasing = (values: number[]): boolean => values.every((v, i) => i === 0 || v > values[i - 1]!)

t.test('the master of a streaming session\'s channel killed -9: delivery back < 3 s after the promotion, in order, no duplicate; /ready 200 again; WebM operators continue or get 4205 and resync', async (t) => {
  const [a, b, c] = cluster.relays as [ServiceProcess, ServiceProcess, ServiceProcess]
  const opaque = await cluster.createSession()
  const master = await redis.masterOf(keySlot(sessionChannel(cluster, opaque.session_id)))
  // A WebM session on the same shard, so the failover hits it too.
  let webm = await cluster.createSession()
  while ((await redis.masterOf(keySlot(sessionChannel(cluster, webm.session_id)))).id !== master.id) webm = await cluster.createSession()

  const operators = [await connected(t, cluster.wsUrl(b, opaque.session_id, 'op-b')), await connected(t, cluster.wsUrl(c, opaque.session_id, 'op-c'))] as [TestSocket, TestSocket]
  const publisher = await connected(t, cluster.wsUrl(a, opaque.session_id, opaque.client_id, opaque.stream_key))
  await primed(publisher, operators)
  const media = webmStream()
  const webmPublisher = await connected(t, cluster.wsUrl(a, webm.session_id, webm.client_id, webm.stream_key))
  await webmPublisher.send(media.init)
  let clusters = 0
  const webmTimer = setInterval(() => { void webmPublisher.send(media.cluster(clusters++)).catch(() => {}) }, 20)
  t.teardown(() => clearInterval(webmTimer))
  const viewers = [await connected(t, cluster.wsUrl(b, webm.session_id, 'viewer-b')), await connected(t, cluster.wsUrl(c, webm.session_id, 'viewer-c'))] as [TestSocket, TestSocket]
  const viewerClosed: Array<{ code: number, reason: string } | undefined> = [undefined, undefined]
  for (const [i, viewer] of viewers.entries()) void viewer.closed.then((closed) => { viewerClosed[i] = closed })

  const stream = sequenced(publisher, 50)
  t.teardown(() => stream.stop())
  await waitFor('both streams on B and C', () => operators.every((o) => sequenceNumbers(o).length >= 50) && viewers.every((v) => clusterNumbers(v).length >= 20), 15_000)
  const gapsBefore = await Promise.all([b, c].map(async (relay) => await metric(relay, 'backplane_sequence_gaps_total')))

  const replica = (await redis.nodes()).find((n) => n.masterId === master.id)!
  const admin = new Redis({ host: '127.0.0.1', port: replica.port, maxRetriesPerRequest: 1 })
  admin.on('error', () => {})
  t.teardown(() => { admin.disconnect() })
  await redis.server(master.port).kill()
  const killedAt = Date.now()
  await waitFor('the replica promoted', async () => String((await admin.call('ROLE') as unknown[])[0]) === 'master', 20_000, 10)
  const promotedAt = Date.now()
  const atPromotion = operators.map((o) => o.messages.length)
  const back = await Promise.all(operators.map(async (o, i) => await waitFor(`delivery back on ${'BC'[i]}`, () => o.messages.length > atPromotion[i]!, 10_000, 5)))
  t.comment(`promoted ${promotedAt - killedAt} ms after the kill; delivery back ${back[0]} ms (B) and ${back[1]} ms (C) after the promotion`)
  for (const [i, ms] of back.entries()) t.ok(ms < 3000, `${'BC'[i]}: delivery back ${ms} ms after the promotion`)
  const readyIn = await waitFor('/ready 200 on every relay', async () => (await Promise.all(cluster.relays.map(readyStatus))).every((s) => s === 200), 10_000, 50)
  t.pass(`/ready 200 on A, B and C ${readyIn} ms after delivery was back`)

  const resumedAt = stream.sent
  await waitFor('100 more messages on B and C', () => operators.every((o) => sequenceNumbers(o).filter((n) => n > resumedAt).length >= 100), 15_000)
  stream.stop()
  const total = stream.sent
  await waitFor('the last message on B and C', () => operators.every((o) => sequenceNumbers(o).at(-1) === total - 1), 5000)
  for (const [i, operator] of operators.entries()) {
    const received = sequenceNumbers(operator)
    t.ok(strictlyIncreasing(received), `${'BC'[i]}: messages before and after in order, none duplicated`)
    const gaps = await metric([b, c][i]!, 'backplane_sequence_gaps_total') - gapsBefore[i]!
    t.ok(gaps >= total - received.length, `${'BC'[i]}: ${total - received.length} messages lost, ${gaps} frames counted as gaps`)
    t.comment(`${'BC'[i]}: resubscribes ${await metric([b, c][i]!, 'backplane_resubscribes_total')}`)
  }

  for (const [i, viewer] of viewers.entries()) {
    const where = 'BC'[i]!
    // By now (100 messages after recovery) a 4205 for lost frames has long been sent.
    const closed = viewerClosed[i]
    if (closed === undefined) {
      const numbers = clusterNumbers(viewer)
      t.ok(numbers.every((n, k) => k === 0 || n === numbers[k - 1]! + 1), `${where}: the WebM operator continued without a hole (${numbers.length} clusters)`)
      continue
    }
    t.equal(closed.code, 4205, `${where}: the WebM operator that lost frames is told to resync (4205 "${closed.reason}")`)
    const again = openSocket(t, cluster.wsUrl([b, c][i]!, webm.session_id, `viewer-${where.toLowerCase()}`))
    const from = clusters
    await waitFor(`${where}: the resynced operator gets the stream`, () => clusterNumbers(again).some((n) => n > from + 10), 15_000)
    t.ok(again.messages[0]!.data.subarray(0, 4).equals(EBML_MAGIC), `${where}: reconnected, it starts with the init segment`)
    const numbers = clusterNumbers(again)
    t.ok(numbers.every((n, k) => k === 0 || n === numbers[k - 1]! + 1), `${where}: then clusters without a hole`)
  }
  for (const [name, proc] of [['control plane', cluster.controlPlane], ['A', a], ['B', b], ['C', c]] as const) {
    t.equal(proc.child.exitCode, null, `${name} did not exit`)
  }
})
