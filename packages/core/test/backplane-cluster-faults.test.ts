import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import { keySlot, shardedChannelName, type Backplane, type ClusterBackplane } from '@streaming-service/core'
import { clusterFixture } from './backplane-cluster-helper.js'
import { randomPrefix, waitFor } from './backplane-helper.js'

// Failover and slot moves under a live stream, on a 3+3 cluster of this file
// (cluster-node-timeout 1000 ms: a replica takes over about 2 s after its master died).

const fixture = await clusterFixture(t)

interface Arrival { seq: number, at: number }

/** A publisher on A sending one frame every `everyMs`, B collecting them. */
function stream (t: Test, a: Backplane, b: Backplane, sessionId: string, everyMs = 5): { arrivals: Arrival[], sent: () => number, stop: () => void } {
  const arrivals: Arrival[] = []
  b.subscribe(sessionId, (frame) => { arrivals.push({ seq: frame.seq, at: Date.now() }) })
  let seq = 0
  const timer = setInterval(() => {
    const payload = Buffer.alloc(256, seq % 251)
    a.publish(sessionId, { kind: 1, seq: seq++, payload })
  }, everyMs)
  const stop = (): void => { clearInterval(timer) }
  t.teardown(stop)
  return { arrivals, sent: () => seq, stop }
}

const increasing = (arrivals: Arrival[]): boolean => arrivals.every((x, i) => i === 0 || x.seq > arrivals[i - 1]!.seq)

async function gapsCounted (registry: Registry): Promise<number> {
  const match = /^backplane_sequence_gaps_total (\d+)/m.exec(await registry.metrics())
  return Number(match?.[1] ?? 0)
}

async function pair (t: Test): Promise<{ a: ClusterBackplane, b: ClusterBackplane, registry: Registry, prefix: string }> {
  const prefix = randomPrefix('faults')
  const registry = new Registry()
  const a = await fixture.node(t, prefix) as ClusterBackplane
  const b = await fixture.node(t, prefix, { metrics: registry }) as ClusterBackplane
  return { a, b, registry, prefix }
}

t.test('the master of a live session\'s slot is killed -9: delivery is back < 3 s after the replica\'s promotion, in order, no duplicate, the gap counted', async (t) => {
  const { a, b, registry, prefix } = await pair(t)
  const sessionId = randomUUID()
  const slot = keySlot(shardedChannelName(prefix, sessionId))
  const { arrivals, sent, stop } = stream(t, a, b, sessionId)
  await waitFor(() => arrivals.length >= 100, 5000, 'the stream flowing')

  const master = await fixture.redis.masterOf(slot)
  const replica = (await fixture.redis.nodes()).find((n) => n.masterId === master.id)!
  await fixture.redis.server(master.port).kill()
  const killedAt = Date.now()
  const before = arrivals.length
  await waitFor(async () => String((await fixture.admin(replica.port).call('ROLE') as unknown[])[0]) === 'master', 15_000, 'the replica promoted')
  const promotedAt = Date.now()
  await waitFor(() => arrivals.some((x) => x.at > killedAt), 10_000, 'delivery back')
  const back = arrivals.find((x) => x.at > killedAt)!
  const recoveryMs = back.at - promotedAt
  t.comment(`promotion ${promotedAt - killedAt} ms after the kill; first frame ${recoveryMs} ms after the promotion (seq ${back.seq})`)
  t.ok(recoveryMs < 3000, `delivery back ${recoveryMs} ms after the promotion`)
  await waitFor(() => arrivals.length >= before + 200, 10_000, '200 frames after the failover')
  stop()
  const total = sent()
  await waitFor(() => arrivals.at(-1)!.seq >= total - 1, 5000, 'the last frame')

  t.ok(increasing(arrivals), 'frames before and after in order, none duplicated')
  const missing = total - arrivals.length - arrivals[0]!.seq
  t.ok(missing > 0, `${missing} frames lost while the shard had no master`)
  t.equal(await gapsCounted(registry), missing, 'every lost frame is counted as a sequence gap on arrival')
  t.ok(b.resubscribes.topology >= 1, `B resubscribed on the new master (${JSON.stringify(b.resubscribes)})`)
  t.comment(`resubscribes: A ${JSON.stringify(a.resubscribes)}, B ${JSON.stringify(b.resubscribes)}; A publish errors ${a.stats().publishErrors}, drops ${JSON.stringify(a.stats().dropped)}`)
  await waitFor(async () => { await Promise.all([a.ready(), b.ready()]); return true }, 10_000, 'both ready again')
  t.pass('ready() resolves again on both nodes')

  await fixture.redis.server(master.port).start()
  await fixture.redis.waitHealthy()
})

t.test('a live session\'s slot is moved to another master: delivery continues, every lost frame is counted', async (t) => {
  const { a, b, registry, prefix } = await pair(t)
  const sessionId = randomUUID()
  const slot = keySlot(shardedChannelName(prefix, sessionId))
  const { arrivals, sent, stop } = stream(t, a, b, sessionId)
  await waitFor(() => arrivals.length >= 100, 5000, 'the stream flowing')
  const from = await fixture.redis.masterOf(slot)
  const to = (await fixture.redis.nodes()).find((n) => n.role === 'master' && !n.failing && n.slots.length > 0 && n.id !== from.id)!
  await fixture.redis.moveSlot(slot, to.port)
  const movedAt = Date.now()
  await waitFor(() => arrivals.some((x) => x.at > movedAt + 100) && arrivals.filter((x) => x.at > movedAt).length >= 200, 10_000, '200 frames after the move')
  stop()
  const total = sent()
  await waitFor(() => arrivals.at(-1)!.seq >= total - 1, 5000, 'the last frame')
  t.equal((await fixture.redis.masterOf(slot)).port, to.port, 'the slot is on the other master now')
  t.equal(await fixture.shardNumsub(shardedChannelName(prefix, sessionId)), 1, 'B is subscribed there')
  t.ok(increasing(arrivals), 'in order, none duplicated')
  const missing = total - arrivals.length - arrivals[0]!.seq
  t.equal(await gapsCounted(registry), missing, `no silent loss: the ${missing} lost frames are all counted as gaps`)
  t.ok(b.resubscribes.topology >= 1, `B resubscribed (${JSON.stringify(b.resubscribes)})`)
  const first = arrivals.find((x) => x.at > movedAt)!
  t.comment(`moved slot ${slot} from ${from.port} to ${to.port}: ${missing} frames lost, delivery after the move from ${first.at - movedAt} ms`)
  await fixture.redis.moveSlot(slot, from.port)
})

t.test('a slot moved away and straight back: the dropped subscription is made again', async (t) => {
  const { a, b, prefix } = await pair(t)
  const sessionId = randomUUID()
  const slot = keySlot(shardedChannelName(prefix, sessionId))
  const { arrivals, stop } = stream(t, a, b, sessionId)
  await waitFor(() => arrivals.length >= 50, 5000, 'the stream flowing')
  const home = await fixture.redis.masterOf(slot)
  const away = (await fixture.redis.nodes()).find((n) => n.role === 'master' && !n.failing && n.slots.length > 0 && n.id !== home.id)!
  await fixture.redis.moveSlot(slot, away.port)
  await fixture.redis.moveSlot(slot, home.port)
  const backAt = Date.now()
  await waitFor(() => arrivals.filter((x) => x.at > backAt).length >= 100, 10_000, 'delivery after the round trip of the slot')
  stop()
  t.ok(increasing(arrivals), 'in order, none duplicated')
  t.equal(await fixture.shardNumsub(shardedChannelName(prefix, sessionId)), 1, 'subscribed on the home master again')
})
