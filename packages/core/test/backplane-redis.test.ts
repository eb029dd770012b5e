import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import {
  canaryChannelName, channelName, createBackplane, encodeEnvelope, newNodeId, nodeIdToBytes, type Backplane,
} from '@streaming-service/core'
import { adminClient, captureLogger, numsub, pubsubChannels, randomPrefix, TEST_REDIS_URL, waitFor } from './backplane-helper.js'

// What only the Redis backplane has: the wire format on real channels, the
// canary, the two named connections. On the shared Redis, under a random prefix.

async function redisNode (t: Test, prefix: string, registry?: Registry): Promise<{ node: Backplane, lines: Array<Record<string, unknown>> }> {
  const { logger, lines } = captureLogger()
  const node = createBackplane({ keyPrefix: prefix, logger, redisUrl: TEST_REDIS_URL, ...(registry === undefined ? {} : { metrics: registry }) })
  t.teardown(async () => { await node.close() })
  await waitFor(async () => { await node.ready(); return true }, 10_000, 'node ready')
  return { node, lines }
}

t.test('frames on Redis are binary envelopes: a foreign publisher interoperates, garbage is counted and ignored', async (t) => {
  const prefix = randomPrefix('wire')
  const admin = await adminClient(t)
  const { node, lines } = await redisNode(t, prefix)
  const sessionId = randomUUID()
  const channel = channelName(prefix, sessionId)
  const got: Array<{ seq: number, origin: string, payload: Buffer }> = []
  node.subscribe(sessionId, (frame, origin) => { got.push({ seq: frame.seq, origin, payload: frame.payload }) })
  await waitFor(async () => (await numsub(admin, channel)) === 1, 5000, 'subscribed')

  const foreign = newNodeId()
  const bytes = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0xc3, 0x28])
  await admin.publish(channel, 'plain text, not an envelope')
  await admin.publish(channel, Buffer.from([2, 1, ...new Array<number>(30).fill(0)]))
  await admin.publish(channel, encodeEnvelope(nodeIdToBytes(foreign), { kind: 1, seq: 1, payload: bytes }).subarray(0, 20))
  await admin.publish(channel, encodeEnvelope(nodeIdToBytes(node.nodeId), { kind: 1, seq: 2, payload: bytes }))
  await admin.publish(channel, encodeEnvelope(nodeIdToBytes(foreign), { kind: 1, seq: 3, payload: bytes }))
  await waitFor(() => got.length === 1, 5000, 'the valid foreign frame')
  t.equal(got[0]!.seq, 3)
  t.equal(got[0]!.origin, foreign, 'origin is the publisher node id')
  t.ok(got[0]!.payload.equals(bytes), 'non-UTF-8 bytes arrive intact (messageBuffer, not message)')
  t.equal(node.stats().malformed, 3, 'text, another version and a truncated envelope are counted as malformed')
  t.ok(lines.some((l) => l.msg === 'backplane ignored a message that is not an envelope' && l.channel === channel), 'and logged with the channel')
  t.equal(node.stats().received, 1, 'a frame carrying this node as origin is ignored, whoever sent it')
})

t.test('the canary goes round a node-specific channel on the subscriber connection', async (t) => {
  const prefix = randomPrefix('canary')
  const admin = await adminClient(t)
  const registry = new Registry()
  const { node: a } = await redisNode(t, prefix, registry)
  const { node: b } = await redisNode(t, prefix)
  t.same(await pubsubChannels(admin, `${prefix}canary:*`), [canaryChannelName(prefix, a.nodeId), canaryChannelName(prefix, b.nodeId)].sort(),
    'each node listens on its own canary channel')
  t.equal(await numsub(admin, canaryChannelName(prefix, a.nodeId)), 1, 'and nobody else does')
  const text = await registry.metrics()
  const rtt = /^backplane_canary_round_trip_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text)
  t.ok(rtt !== null && Number(rtt[1]) > 0 && Number(rtt[1]) < 1, `the last round trip is on /metrics (${rtt?.[1] ?? 'missing'} s)`)
  t.same(await pubsubChannels(admin, `${prefix}session:*`), [], 'no session channel before anyone watches')
})

t.test('two named connections per node, both gone after close()', async (t) => {
  const prefix = randomPrefix('conns')
  const admin = await adminClient(t)
  const { node } = await redisNode(t, prefix)
  const names = async (): Promise<string[]> => String(await admin.call('CLIENT', 'LIST')).split('\n')
    .map((line) => /name=(\S+)/.exec(line)?.[1] ?? '').filter((name) => name.endsWith(node.nodeId)).sort()
  t.same(await names(), [`ss-backplane-pub-${node.nodeId}`, `ss-backplane-sub-${node.nodeId}`], 'a publisher and a subscriber connection')
  const sessionId = randomUUID()
  node.subscribe(sessionId, () => {})
  await waitFor(async () => (await numsub(admin, channelName(prefix, sessionId))) === 1, 5000, 'subscribed')
  await node.close()
  await waitFor(async () => (await names()).length === 0, 5000, 'connections closed')
  t.equal(await numsub(admin, channelName(prefix, sessionId)), 0, 'its subscriptions are gone with it')
  t.same(await pubsubChannels(admin, `${prefix}*`), [], 'nothing of the deployment is left on Redis')
})
