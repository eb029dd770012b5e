import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { Registry } from 'prom-client'
import type { Backplane, Frame, Logger } from '@streaming-service/core'
import { captureLogger, mixedFrames, publishPaced, randomPrefix, sleep, waitFor } from './backplane-helper.js'

/**
 * The backplane contract (core/src/backplane/types.ts), run against every
 * implementation. A factory builds N nodes of one "deployment" (one key
 * prefix) on a transport shared by every cluster it makes, so deployments
 * with different prefixes can be shown not to hear each other.
 */
export interface ClusterOptions {
  nodes: number
  prefix?: string
  logger?: Logger
  registry?: Registry
  maxInFlight?: number
}

export interface BackplaneCluster {
  prefix: string
  nodes: Backplane[]
  /** The transport's channel of a session (channelName, or shardedChannelName on Redis Cluster). */
  channel (sessionId: string): string
  /** How many nodes the transport has subscribed to a channel (Redis: PUBSUB NUMSUB; Cluster: PUBSUB SHARDNUMSUB). */
  subscriberCount (channel: string): Promise<number>
  /** The transport's channels that start with `prefix` (Redis: PUBSUB CHANNELS prefix*). */
  channels (prefix: string): Promise<string[]>
}

/** Builds the nodes (all ready) and closes them at the test's teardown. */
export type ClusterFactory = (t: Test, options: ClusterOptions) => Promise<BackplaneCluster>

interface Received { frame: Frame, origin: string }

function collect (node: Backplane, sessionId: string): { received: Received[], stop: () => void } {
  const received: Received[] = []
  const stop = node.subscribe(sessionId, (frame, origin) => { received.push({ frame, origin }) })
  return { received, stop }
}

function sameFrames (t: Test, received: Received[], sent: Frame[], origin: string, what: string): void {
  t.equal(received.length, sent.length, `${what}: every frame arrived`)
  let mismatches = 0
  for (let i = 0; i < Math.min(received.length, sent.length); i++) {
    const got = received[i]!
    const want = sent[i]!
    if (got.frame.kind !== want.kind || got.frame.seq !== want.seq || got.origin !== origin || !got.frame.payload.equals(want.payload)) {
      if (mismatches++ === 0) t.fail(`${what}: frame ${i} differs (kind ${got.frame.kind}/${want.kind}, seq ${got.frame.seq}/${want.seq}, ${got.frame.payload.length}/${want.payload.length} bytes)`)
    }
  }
  t.equal(mismatches, 0, `${what}: byte-exact, in order, with kind, seq and origin`)
}

/** Waits until a subscriber has surely been established on the transport (Redis: SUBSCRIBE answered). */
async function subscribed (cluster: BackplaneCluster, sessionId: string, nodes: number): Promise<void> {
  const channel = cluster.channel(sessionId)
  await waitFor(async () => (await cluster.subscriberCount(channel)) === nodes, 5000, `${nodes} subscribers on ${channel}`)
}

export function backplaneContract (t: Test, name: string, makeCluster: ClusterFactory): void {
  t.test(`${name}: ready() resolves on every node and reports the transport`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 2 })
    for (const node of cluster.nodes) {
      await node.ready()
      t.match(node.nodeId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'node id is a UUID')
    }
    t.not(cluster.nodes[0]!.nodeId, cluster.nodes[1]!.nodeId, 'each node has its own id')
  })

  t.test(`${name}: 1000 mixed frames reach every other node byte-exact and in order`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 3 })
    const [a, b, c] = cluster.nodes as [Backplane, Backplane, Backplane]
    const sessionId = randomUUID()
    const atA = collect(a, sessionId)
    const atB = collect(b, sessionId)
    const atC = collect(c, sessionId)
    await subscribed(cluster, sessionId, 3)
    const frames = mixedFrames(1000)
    t.ok(frames.some((f) => f.payload.length === 0) && frames.some((f) => f.payload.length === 1024 * 1024), 'includes an empty and a 1 MiB payload')
    t.equal(await publishPaced(a, sessionId, frames), 0, 'no publish refused at a paced rate')
    await waitFor(() => atB.received.length >= 1000 && atC.received.length >= 1000, 15_000, 'all frames at B and C')
    await sleep(50)
    sameFrames(t, atB.received, frames, a.nodeId, 'node B')
    sameFrames(t, atC.received, frames, a.nodeId, 'node C')
    t.equal(atA.received.length, 0, 'the publishing node does not receive its own frames')
    t.equal(a.stats().published, 1000)
    t.equal(b.stats().received, 1000, 'B counts each frame once')
  })

  t.test(`${name}: whenSubscribed() resolves once the transport subscribed: a frame published right after reaches the node`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 2 })
    const [a, b] = cluster.nodes as [Backplane, Backplane]
    const sessionId = randomUUID()
    await b.whenSubscribed(sessionId)
    t.pass('resolves at once without a subscription')
    const atB = collect(b, sessionId)
    await b.whenSubscribed(sessionId)
    t.equal(await cluster.subscriberCount(cluster.channel(sessionId)), 1, 'the transport has the subscription')
    t.ok(a.publish(sessionId, { kind: 4, seq: 1, payload: Buffer.from('state') }), 'published')
    await waitFor(() => atB.received.length === 1, 5000, 'the frame at B')
    t.equal(atB.received[0]!.frame.kind, 4, 'with its kind')
    atB.stop()
  })

  t.test(`${name}: frames of several publishers are ordered per publisher`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 3 })
    const [a, b, c] = cluster.nodes as [Backplane, Backplane, Backplane]
    const sessionId = randomUUID()
    const atC = collect(c, sessionId)
    await subscribed(cluster, sessionId, 1)
    const fromA = mixedFrames(200).map((f) => ({ ...f, payload: f.payload.subarray(0, 2048) }))
    const fromB = mixedFrames(200, 10_000).map((f) => ({ ...f, payload: f.payload.subarray(0, 2048) }))
    await Promise.all([publishPaced(a, sessionId, fromA, 8), publishPaced(b, sessionId, fromB, 8)])
    await waitFor(() => atC.received.length >= 400, 10_000, 'frames of both publishers at C')
    sameFrames(t, atC.received.filter((r) => r.origin === a.nodeId), fromA, a.nodeId, 'from A')
    sameFrames(t, atC.received.filter((r) => r.origin === b.nodeId), fromB, b.nodeId, 'from B')
  })

  t.test(`${name}: local subscribers of a node share one Frame and one Buffer`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 2 })
    const [a, b] = cluster.nodes as [Backplane, Backplane]
    const sessionId = randomUUID()
    const seen: Array<Array<{ frame: Frame, origin: string }>> = [[], [], []]
    for (const list of seen) b.subscribe(sessionId, (frame, origin) => { list.push({ frame, origin }) })
    await subscribed(cluster, sessionId, 1)
    const frames = mixedFrames(20)
    await publishPaced(a, sessionId, frames)
    await waitFor(() => seen.every((list) => list.length === 20), 5000, 'frames at all three handlers')
    for (let i = 0; i < 20; i++) {
      const [x, y, z] = seen.map((list) => list[i]!) as [Received, Received, Received]
      if (x.frame !== y.frame || y.frame !== z.frame || x.frame.payload !== z.frame.payload) {
        t.fail(`frame ${i} was not shared`)
        return
      }
    }
    t.pass('every handler got the same Frame object and payload Buffer')
    sameFrames(t, seen[0]!, frames, a.nodeId, 'first handler')
    t.equal(b.stats().received, 20, 'counted once per frame, not per handler')
  })

  t.test(`${name}: unsubscribing stops delivery; unsubscribe is idempotent`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 2 })
    const [a, b] = cluster.nodes as [Backplane, Backplane]
    const sessionId = randomUUID()
    const marker = randomUUID()
    const first = collect(b, sessionId)
    const second = collect(b, sessionId)
    const markers = collect(b, marker)
    await subscribed(cluster, sessionId, 1)
    await subscribed(cluster, marker, 1)

    a.publish(sessionId, { kind: 1, seq: 1, payload: Buffer.from([1]) })
    await waitFor(() => second.received.length === 1, 5000, 'first frame')
    first.stop()
    first.stop()
    a.publish(sessionId, { kind: 1, seq: 2, payload: Buffer.from([2]) })
    await waitFor(() => second.received.length === 2, 5000, 'second frame')
    t.equal(first.received.length, 1, 'an unsubscribed handler gets nothing more')
    t.equal(second.received.length, 2, 'calling unsubscribe twice did not remove another handler')

    second.stop()
    await subscribed(cluster, sessionId, 0)
    a.publish(sessionId, { kind: 1, seq: 3, payload: Buffer.from([3]) })
    // One publisher's frames arrive in order whatever the channel, so once the
    // marker is in, the frame before it would have been too.
    a.publish(marker, { kind: 3, seq: 1, payload: Buffer.from('marker') })
    await waitFor(() => markers.received.length === 1, 5000, 'marker')
    t.equal(second.received.length, 2, 'after the last handler left nothing is delivered')
  })

  t.test(`${name}: the transport subscription is reference-counted per node`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 2 })
    const [a, b] = cluster.nodes as [Backplane, Backplane]
    const sessionId = randomUUID()
    const channel = cluster.channel(sessionId)
    const sessions = `${cluster.prefix}session:`
    t.equal(await cluster.subscriberCount(channel), 0, 'nobody subscribed at first')
    t.same(await cluster.channels(sessions), [], 'the deployment has no session channel')

    const a1 = a.subscribe(sessionId, () => {})
    await subscribed(cluster, sessionId, 1)
    t.same(await cluster.channels(sessions), [channel], 'the channel appears with the first local subscriber')
    const a2 = a.subscribe(sessionId, () => {})
    const b1 = b.subscribe(sessionId, () => {})
    await subscribed(cluster, sessionId, 2)
    t.equal(a.stats().sessions, 1, 'one session on node A with two handlers')
    a1()
    await sleep(50)
    t.equal(await cluster.subscriberCount(channel), 2, 'A stays subscribed while it has a handler left')
    a2()
    await subscribed(cluster, sessionId, 1)
    t.equal(a.stats().sessions, 0)
    b1()
    await subscribed(cluster, sessionId, 0)
    t.same(await cluster.channels(sessions), [], 'the channel is gone after the last subscriber of the last node left')

    // Subscribe, unsubscribe, subscribe again in one tick: the end state wins.
    a.subscribe(sessionId, () => {})()
    const again = collect(a, sessionId)
    await subscribed(cluster, sessionId, 1)
    b.publish(sessionId, { kind: 2, seq: 7, payload: Buffer.from('again') })
    await waitFor(() => again.received.length === 1, 5000, 'delivery after a quick resubscribe')
  })

  t.test(`${name}: key prefixes isolate deployments sharing a transport`, async (t) => {
    const x = await makeCluster(t, { nodes: 2, prefix: randomPrefix('x') })
    const y = await makeCluster(t, { nodes: 2, prefix: randomPrefix('y') })
    const sessionId = randomUUID()
    const atX = collect(x.nodes[1]!, sessionId)
    const atY = collect(y.nodes[1]!, sessionId)
    await subscribed(x, sessionId, 1)
    await subscribed(y, sessionId, 1)
    const fromX = mixedFrames(30).map((f) => ({ ...f, payload: f.payload.subarray(0, 100) }))
    const fromY = mixedFrames(30, 500).map((f) => ({ ...f, payload: f.payload.subarray(0, 100) }))
    await publishPaced(x.nodes[0]!, sessionId, fromX)
    await publishPaced(y.nodes[0]!, sessionId, fromY)
    await waitFor(() => atX.received.length >= 30 && atY.received.length >= 30, 5000, 'both deployments')
    await sleep(100)
    sameFrames(t, atX.received, fromX, x.nodes[0]!.nodeId, 'deployment X')
    sameFrames(t, atY.received, fromY, y.nodes[0]!.nodeId, 'deployment Y')
  })

  t.test(`${name}: publish never blocks or throws; past the in-flight bound frames are dropped and counted`, async (t) => {
    const registry = new Registry()
    const cluster = await makeCluster(t, { nodes: 2, registry, maxInFlight: 16 })
    const [a, b] = cluster.nodes as [Backplane, Backplane]
    const sessionId = randomUUID()
    const atB = collect(b, sessionId)
    await subscribed(cluster, sessionId, 1)

    const results = mixedFrames(200).map((frame) => a.publish(sessionId, { ...frame, payload: frame.payload.subarray(0, 512) }))
    const accepted = results.filter(Boolean).length
    t.equal(accepted, 16, 'a synchronous burst gets exactly maxInFlight publishes in')
    t.same(results.slice(0, 16), Array(16).fill(true), 'the first ones go, the rest are refused')
    t.equal(a.stats().dropped.backpressure, 184)
    await waitFor(() => atB.received.length === 16 && a.stats().inFlight === 0, 5000, 'the accepted frames')
    t.same(atB.received.map((r) => r.frame.seq), [...Array(16).keys()], 'what went out arrives in order, nothing of the rest')

    t.equal(a.publish(sessionId, { kind: 0, seq: 1, payload: Buffer.alloc(1) }), false, 'reserved kind 0 refused')
    t.equal(a.publish(sessionId, { kind: 3, seq: -1, payload: Buffer.alloc(1) }), false, 'negative seq refused')
    t.equal(a.publish(sessionId, { kind: 3, seq: 1.5, payload: Buffer.alloc(1) }), false, 'fractional seq refused')
    t.equal(a.stats().dropped.invalid, 3)
    t.equal(a.publish(sessionId, { kind: 3, seq: Number.MAX_SAFE_INTEGER, payload: Buffer.alloc(0) }), true, 'seq up to 2^53-1 is fine')
    await waitFor(() => atB.received.length === 17, 5000, 'the max-seq frame')
    t.equal(atB.received[16]!.frame.seq, Number.MAX_SAFE_INTEGER, 'a uint53 seq survives the trip')

    const text = await registry.metrics()
    t.match(text, /backplane_frames_dropped_total\{reason="backpressure"\} 184/, 'drops by reason on the registry passed in')
    t.match(text, /backplane_frames_dropped_total\{reason="invalid"\} 3/)
  })

  t.test(`${name}: a throwing handler neither stops the others nor the node`, async (t) => {
    const { logger, lines } = captureLogger()
    const cluster = await makeCluster(t, { nodes: 2, logger })
    const [a, b] = cluster.nodes as [Backplane, Backplane]
    const sessionId = randomUUID()
    b.subscribe(sessionId, () => { throw new Error('handler bug') })
    const good = collect(b, sessionId)
    await subscribed(cluster, sessionId, 1)
    const frames = mixedFrames(10).map((f) => ({ ...f, payload: f.payload.subarray(0, 64) }))
    await publishPaced(a, sessionId, frames)
    await waitFor(() => good.received.length === 10, 5000, 'frames at the good handler')
    sameFrames(t, good.received, frames, a.nodeId, 'the good handler')
    t.ok(lines.some((line) => line.msg === 'backplane frame handler threw' && (line.err as { message?: string }).message === 'handler bug'),
      'the error is logged object-first')
  })

  t.test(`${name}: close() is clean and idempotent; a closed node refuses politely`, async (t) => {
    const cluster = await makeCluster(t, { nodes: 2 })
    const [a, b] = cluster.nodes as [Backplane, Backplane]
    const sessionId = randomUUID()
    const atB = collect(b, sessionId)
    a.subscribe(sessionId, () => {})
    await subscribed(cluster, sessionId, 2)
    await Promise.all([a.close(), a.close()])
    await a.close()
    await subscribed(cluster, sessionId, 1)
    t.equal(a.publish(sessionId, { kind: 1, seq: 1, payload: Buffer.alloc(3) }), false, 'publish after close is refused')
    t.equal(a.stats().dropped.closed, 1, 'and counted as closed')
    await t.rejects(a.ready(), { code: 'SS_BACKPLANE_UNAVAILABLE' }, 'ready() rejects after close')
    t.doesNotThrow(() => a.subscribe(sessionId, () => {})(), 'subscribe after close is a no-op')
    t.equal(atB.received.length, 0)
    await b.ready()
    t.pass('the other node is unaffected')
  })
}
