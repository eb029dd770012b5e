import { randomUUID } from 'node:crypto'
import t from 'tap'
import { keySlot, shardedChannelName, type ClusterBackplane } from '@streaming-service/core'
import { startRedisCluster } from '@streaming-service/testing'
import { randomPrefix, waitFor } from './backplane-helper.js'
import { clusterFixture } from './backplane-cluster-helper.js'

// A shard that goes silent while its connections look fine (its redis-server
// stopped with SIGSTOP: sockets open, nothing answers). cluster-node-timeout
// is long here so no replica takes over: the shard must come back by itself.

const fixture = await clusterFixture(t, async () => await startRedisCluster(t, { nodeTimeoutMs: 60_000 }))

t.test('a silent shard makes the node unready; it reconnects that shard, resubscribes, and is ready again once the shard answers', async (t) => {
  const prefix = randomPrefix('silent')
  const node = await fixture.node(t, prefix, { cluster: { canaryIntervalMs: 200, canaryStaleMs: 1000, healAfterMs: 2000 } }) as ClusterBackplane
  const publisher = await fixture.node(t, prefix) as ClusterBackplane
  const sessionId = randomUUID()
  const got: number[] = []
  node.subscribe(sessionId, (frame) => { got.push(frame.seq) })
  await node.whenSubscribed(sessionId)
  const master = await fixture.redis.masterOf(keySlot(shardedChannelName(prefix, sessionId)))
  const server = fixture.redis.server(master.port)
  const pid = server.pid!
  const resume = (): void => { try { process.kill(pid, 'SIGCONT') } catch {} }
  t.teardown(resume)

  process.kill(pid, 'SIGSTOP')
  const stoppedAt = Date.now()
  const err = await waitFor(async () => await node.ready().then(() => undefined, (err: Error) => err), 5000, 'ready() to reject') as Error
  t.match(err, { code: 'SS_BACKPLANE_UNAVAILABLE', message: new RegExp(String(master.port)) }, `unready ${Date.now() - stoppedAt} ms after the shard went silent, naming it: ${err.message}`)
  await waitFor(() => node.resubscribes.heal >= 2, 10_000, 'the silent shard reconnected and its channels resubscribed')
  t.pass(`the shard was reopened ${Date.now() - stoppedAt} ms after it went silent (${JSON.stringify(node.resubscribes)})`)
  await t.rejects(node.ready(), { code: 'SS_BACKPLANE_UNAVAILABLE' }, 'still unready while the shard is silent')

  resume()
  const resumedAt = Date.now()
  await waitFor(async () => { await node.ready(); return true }, 10_000, 'ready again')
  t.pass(`ready again ${Date.now() - resumedAt} ms after the shard answered`)
  await waitFor(() => {
    publisher.publish(sessionId, { kind: 1, seq: got.length + 1000, payload: Buffer.from('after') })
    return got.length > 0
  }, 5000, 'a frame through the healed subscription')
  t.pass('frames flow through the resubscribed channel')
})

t.test('a master restarted in place (no failover): the shard\'s subscriber reconnects and subscribes its channels again', async (t) => {
  const prefix = randomPrefix('restart')
  const node = await fixture.node(t, prefix) as ClusterBackplane
  const publisher = await fixture.node(t, prefix) as ClusterBackplane
  const sessionId = randomUUID()
  const got: number[] = []
  node.subscribe(sessionId, (frame) => { got.push(frame.seq) })
  await node.whenSubscribed(sessionId)
  const channel = shardedChannelName(prefix, sessionId)
  const master = await fixture.redis.masterOf(keySlot(channel))
  const server = fixture.redis.server(master.port)
  await server.kill()
  await server.start()
  await fixture.redis.waitHealthy()
  await waitFor(async () => await fixture.shardNumsub(channel) === 1, 10_000, 'subscribed again on the restarted master')
  let seq = 0
  await waitFor(() => {
    publisher.publish(sessionId, { kind: 1, seq: seq++, payload: Buffer.from('after restart') })
    return got.length > 0
  }, 10_000, 'frames through the restarted shard')
  t.equal((await fixture.redis.masterOf(keySlot(channel))).port, master.port, 'the same master, no failover')
  await waitFor(async () => { await node.ready(); return true }, 10_000, 'ready again')
  t.pass('delivery and readiness are back')
})
