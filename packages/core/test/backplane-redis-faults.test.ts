import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import t, { type Test } from 'tap'
import { createBackplane, encodeEnvelope, newNodeId, nodeIdToBytes, type Backplane, type BackplaneOptions, type Frame } from '@streaming-service/core'
import { tempDir } from '@streaming-service/testing'
import { adminClient, captureLogger, numsub, randomPrefix, sleep, throwawayRedis, waitFor, type ThrowawayRedis } from './backplane-helper.js'

// Redis faults on throwaway redis-servers of our own (spare ports, killed by
// PID): the shared 6379 is never touched. SPEC §7: Redis lost → the backplane
// reconnects and resubscribes by itself, /ready reports it, nothing crashes.

type NodeOptions = Partial<Omit<BackplaneOptions, 'redisUrl' | 'keyPrefix' | 'logger'>>

interface Nodes { prefix: string, nodes: Backplane[], lines: Array<Record<string, unknown>> }

async function nodes (t: Test, redis: ThrowawayRedis, count: number, options: NodeOptions = {}): Promise<Nodes> {
  const prefix = randomPrefix('faults')
  const { logger, lines } = captureLogger()
  const list = Array.from({ length: count }, () => createBackplane({ keyPrefix: prefix, logger, redisUrl: redis.url, ...options }))
  t.teardown(async () => { await Promise.all(list.map(async (node) => { await node.close() })) })
  return { prefix, nodes: list, lines }
}

async function isReady (node: Backplane): Promise<boolean> {
  try {
    await node.ready()
    return true
  } catch {
    return false
  }
}

const uncaught: unknown[] = []
process.on('uncaughtException', (err) => { uncaught.push(err) })
process.on('unhandledRejection', (err) => { uncaught.push(err) })

t.test('Redis killed -9 mid-stream and restarted: delivery resumes within 2 s, no replay of stale frames', async (t) => {
  const redis = await throwawayRedis(t)
  const { prefix, nodes: [a, b], lines } = await nodes(t, redis, 2) as Nodes & { nodes: [Backplane, Backplane] }
  await waitFor(async () => await isReady(a) && await isReady(b), 10_000, 'both nodes ready')
  const sessionId = randomUUID()
  const leftDuringOutage = randomUUID()
  const joinedDuringOutage = randomUUID()
  const received: Array<{ seq: number, at: number }> = []
  b.subscribe(sessionId, (frame) => { received.push({ seq: frame.seq, at: performance.now() }) })
  const leave = b.subscribe(leftDuringOutage, () => {})
  const admin = await adminClient(t, redis.url)
  await waitFor(async () => (await numsub(admin, `${prefix}session:${sessionId}`)) === 1, 5000, 'B subscribed')
  await waitFor(async () => (await numsub(admin, `${prefix}session:${leftDuringOutage}`)) === 1, 5000, 'B subscribed')
  admin.disconnect()

  // A publisher at 200 frames/s of 8 KiB, for the whole test.
  const publishedAt: number[] = []
  const accepted = new Set<number>()
  let seq = 0
  const payload = randomBytes(8192)
  const stream = setInterval(() => {
    const frame: Frame = { kind: 1, seq, payload }
    publishedAt[seq] = performance.now()
    if (a.publish(sessionId, frame)) accepted.add(seq)
    seq++
  }, 5)
  t.teardown(() => { clearInterval(stream) })

  await waitFor(() => received.length >= 100, 5000, 'the stream flowing before the outage')
  const killedAt = performance.now()
  await redis.kill()
  t.pass(`redis-server killed with SIGKILL (pid ${String(redis.pid)})`)
  await waitFor(async () => !(await isReady(a)) && !(await isReady(b)), 3000, 'ready() failing on both nodes')
  const notReadyAfterMs = performance.now() - killedAt
  await t.rejects(a.ready(), { code: 'SS_BACKPLANE_UNAVAILABLE' }, 'ready() rejects with SS_BACKPLANE_UNAVAILABLE during the outage')
  const receivedBeforeOutage = received.length
  leave()
  const joined: number[] = []
  b.subscribe(joinedDuringOutage, (frame) => { joined.push(frame.seq) })

  await sleep(2000 - (performance.now() - killedAt))
  t.notOk(await isReady(a), 'still not ready 2 s into the outage')
  const droppedDuringOutage = a.stats().dropped.disconnected
  t.ok(droppedDuringOutage > 100, `frames published during the outage are dropped, not queued (${droppedDuringOutage})`)

  await redis.start()
  const backAt = performance.now()
  await waitFor(() => received.some((r) => r.at > backAt), 5000, 'a frame delivered after Redis is back')
  const firstAfter = received.find((r) => r.at > backAt)!
  const resumedMs = firstAfter.at - backAt
  t.ok(resumedMs < 2000, `delivery resumed ${Math.round(resumedMs)} ms after Redis answered again (< 2000)`)
  await waitFor(async () => await isReady(a) && await isReady(b), 5000, 'ready() again on both nodes')
  const readyAgainMs = performance.now() - backAt

  const adminAfter = await adminClient(t, redis.url)
  t.equal(await numsub(adminAfter, `${prefix}session:${sessionId}`), 1, 'B resubscribed by itself')
  t.equal(await numsub(adminAfter, `${prefix}session:${joinedDuringOutage}`), 1, 'a session joined during the outage is subscribed once Redis is back')
  t.equal(await numsub(adminAfter, `${prefix}session:${leftDuringOutage}`), 0, 'a session left during the outage is not resubscribed')
  a.publish(joinedDuringOutage, { kind: 3, seq: 5, payload: Buffer.from('{}') })
  await waitFor(() => joined.length === 1, 5000, 'delivery on the session joined during the outage')

  await sleep(300)
  const afterOutage = received.slice(receivedBeforeOutage)
  const stale = afterOutage.filter((r) => publishedAt[r.seq]! < backAt - 50)
  t.same(stale.map((r) => r.seq), [], 'nothing published before Redis came back is delivered after it (no replay)')
  t.ok(received.every((r) => accepted.has(r.seq)), 'only frames publish() accepted are delivered')
  t.ok(received.every((r, i) => i === 0 || r.seq > received[i - 1]!.seq), 'in order, with a gap for the outage')
  const stats = a.stats()
  t.ok(stats.reconnects >= 2 && b.stats().reconnects >= 2, 'publisher and subscriber connections both came back')
  t.ok(stats.inFlight <= 64, 'publishes in flight stay bounded')
  t.ok(lines.some((l) => l.msg === 'backplane connection lost'), 'the loss is logged')
  t.ok(lines.some((l) => l.msg === 'backplane connection restored' && typeof l.downMs === 'number'), 'the recovery is logged with its downtime')
  t.ok(lines.filter((l) => l.msg === 'backplane connection error' && l.level === 40).length <= 8, 'one warning per connection per outage, not one per retry')
  t.comment(`measured: not ready ${Math.round(notReadyAfterMs)} ms after kill; delivery resumed ${Math.round(resumedMs)} ms and ready() ${Math.round(readyAgainMs)} ms after Redis was back; ${droppedDuringOutage} frames dropped while down; ${stats.publishErrors} publishes failed in flight`)
})

t.test('a subscriber cut by client-output-buffer-limit pubsub reconnects and resubscribes by itself', async (t) => {
  const redis = await throwawayRedis(t)
  const admin = await adminClient(t, redis.url)
  await admin.call('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 1mb 512kb 1')
  const { prefix, nodes: [a, b], lines } = await nodes(t, redis, 2) as Nodes & { nodes: [Backplane, Backplane] }
  await waitFor(async () => await isReady(a) && await isReady(b), 10_000, 'both nodes ready')
  const sessionId = randomUUID()
  const channel = `${prefix}session:${sessionId}`
  const seqs: number[] = []
  let stalled = false
  let stallEndedAt = 0
  b.subscribe(sessionId, (frame) => {
    seqs.push(frame.seq)
    if (!stalled) {
      // A reader that stops reading: the process is stuck, Redis keeps queueing.
      stalled = true
      const until = Date.now() + 1500
      while (Date.now() < until) { /* stall */ }
      stallEndedAt = performance.now()
    }
  })
  await waitFor(async () => (await numsub(admin, channel)) === 1, 5000, 'B subscribed')

  // Another process floods the channel with 64 KiB frames (40 MiB), so it
  // keeps going while this one is stalled.
  const dir = tempDir('ss-flood-')
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const messageFile = join(dir, 'message')
  writeFileSync(messageFile, encodeEnvelope(nodeIdToBytes(newNodeId()), { kind: 1, seq: 1, payload: randomBytes(64 * 1024) }))
  const flood = spawn(process.execPath, ['-e', `
    const net = require('node:net'); const fs = require('node:fs')
    const [port, channel, file, count] = process.argv.slice(1)
    const message = fs.readFileSync(file)
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      for (let i = 0; i < Number(count); i++) {
        socket.write('*3\\r\\n$7\\r\\nPUBLISH\\r\\n$' + Buffer.byteLength(channel) + '\\r\\n' + channel + '\\r\\n$' + message.length + '\\r\\n')
        socket.write(message)
        socket.write('\\r\\n')
      }
      socket.end('*1\\r\\n$4\\r\\nQUIT\\r\\n')
    })
    socket.resume()
  `, String(redis.port), channel, messageFile, '640'], { stdio: 'ignore' })
  const floodExit = new Promise((resolve) => flood.once('exit', resolve))

  await waitFor(() => b.stats().reconnects >= 1, 10_000, 'the subscriber connection of B reconnecting')
  await floodExit
  t.match(redis.log(), /output buffer limits/, 'Redis closed the subscriber for its output buffer limit')
  t.ok(stalled, 'the cut came while B was a stalled reader')
  t.ok(lines.some((l) => l.msg === 'backplane connection lost' && l.connection === 'subscriber'), 'the cut is logged')

  // Fresh frames from node A reach B again, without anyone resubscribing by hand.
  const resubscribedAt = await waitFor(async () => (await numsub(admin, channel)) === 1 ? performance.now() : false, 5000, 'B resubscribed') as number
  const before = seqs.length
  for (let i = 0; i < 5; i++) a.publish(sessionId, { kind: 2, seq: 1000 + i, payload: Buffer.from(`after ${i}`) })
  await waitFor(() => seqs.length >= before + 5, 5000, 'frames after the cut')
  t.same(seqs.slice(-5), [1000, 1001, 1002, 1003, 1004], 'delivery resumed in order')
  await waitFor(async () => await isReady(b), 5000, 'B ready again')
  t.comment(`measured: subscriber cut and resubscribed ${Math.round(resubscribedAt - stallEndedAt)} ms after the stalled reader resumed; B got ${before} of the 640 flood frames before the cut`)
})

t.test('CLIENT KILL TYPE pubsub: subscribers come back by themselves', async (t) => {
  const redis = await throwawayRedis(t)
  const admin = await adminClient(t, redis.url)
  const { prefix, nodes: [a, b, c] } = await nodes(t, redis, 3) as Nodes & { nodes: [Backplane, Backplane, Backplane] }
  await waitFor(async () => await isReady(a) && await isReady(b) && await isReady(c), 10_000, 'nodes ready')
  const sessionId = randomUUID()
  const channel = `${prefix}session:${sessionId}`
  const atB: number[] = []
  const atC: number[] = []
  b.subscribe(sessionId, (frame) => { atB.push(frame.seq) })
  c.subscribe(sessionId, (frame) => { atC.push(frame.seq) })
  await waitFor(async () => (await numsub(admin, channel)) === 2, 5000, 'B and C subscribed')

  const killed = Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))
  t.ok(killed >= 3, `every subscriber connection was killed (${killed})`)
  const killedAt = performance.now()
  await waitFor(async () => (await numsub(admin, channel)) === 2, 5000, 'B and C resubscribed')
  const resubscribedMs = performance.now() - killedAt
  a.publish(sessionId, { kind: 1, seq: 1, payload: Buffer.from([1, 2, 3]) })
  await waitFor(() => atB.length === 1 && atC.length === 1, 5000, 'delivery after the kill')
  await waitFor(async () => await isReady(a) && await isReady(b) && await isReady(c), 5000, 'ready again (canary channels resubscribed too)')
  t.ok(b.stats().reconnects >= 1 && c.stats().reconnects >= 1, 'counted as reconnects')
  t.comment(`measured: resubscribed ${Math.round(resubscribedMs)} ms after CLIENT KILL`)
})

t.test('a silent stall (CLIENT PAUSE) fails ready(); healing reconnects; both recover', async (t) => {
  const redis = await throwawayRedis(t)
  const admin = await adminClient(t, redis.url)
  const { nodes: [watcher] } = await nodes(t, redis, 1, { redis: { canaryStaleMs: 1000, healAfterMs: 60_000 } })
  const { nodes: [healer], lines } = await nodes(t, redis, 1, { redis: { canaryStaleMs: 1000, healAfterMs: 1500 } })
  await waitFor(async () => await isReady(watcher!) && await isReady(healer!), 10_000, 'nodes ready')

  // Connections stay up, but nothing gets through for 3 s.
  await admin.call('CLIENT', 'PAUSE', '3000', 'ALL')
  const pausedAt = performance.now()
  await sleep(1200)
  await t.rejects(watcher!.ready(), { code: 'SS_BACKPLANE_UNAVAILABLE', message: /canary/ }, 'not ready while the canary cannot come back, though connected')
  await waitFor(() => lines.some((l) => l.msg === 'backplane canary not coming back though redis looks connected; reconnecting'), 5000, 'the healer reconnecting')
  await waitFor(async () => await isReady(watcher!) && await isReady(healer!), 10_000, 'ready after the pause')
  t.ok(performance.now() - pausedAt >= 2900, 'not before the pause ended')
  t.ok(healer!.stats().reconnects >= 2, 'the healer re-established both connections')
  t.equal(watcher!.stats().reconnects, 0, 'without healing the connections were kept')
})

t.test('Redis down at start: the node runs, refuses to be ready, and subscribes once Redis is up', async (t) => {
  const redis = await throwawayRedis(t)
  await redis.kill()
  // Healing is quick here: a long outage must not count as canary silence once connected again.
  const { prefix, nodes: [a, b], lines } = await nodes(t, redis, 2, { redis: { canaryIntervalMs: 100, healAfterMs: 600 } }) as Nodes & { nodes: [Backplane, Backplane] }
  const sessionId = randomUUID()
  const atB: number[] = []
  b.subscribe(sessionId, (frame) => { atB.push(frame.seq) })
  await sleep(1000)
  await t.rejects(a.ready(), { code: 'SS_BACKPLANE_UNAVAILABLE' }, 'not ready without Redis')
  t.equal(a.publish(sessionId, { kind: 1, seq: 0, payload: Buffer.alloc(1) }), false, 'publish refuses at once')
  t.equal(a.stats().dropped.disconnected, 1, 'counted as disconnected')

  await redis.start()
  // Left alone (no ready() probes) long enough to reconnect and tick several canaries.
  await sleep(1500)
  t.equal(a.stats().reconnects + b.stats().reconnects, 0, 'the first connection is not counted as a reconnect, nor healed')
  const admin = await adminClient(t, redis.url)
  await waitFor(async () => (await numsub(admin, `${prefix}session:${sessionId}`)) === 1, 5000, 'the subscription made while down is in place')
  await waitFor(async () => await isReady(a) && await isReady(b), 5000, 'ready once Redis is up')
  t.ok(a.publish(sessionId, { kind: 1, seq: 1, payload: Buffer.alloc(1) }))
  await waitFor(() => atB.length === 1, 5000, 'delivery')
  t.same(atB, [1], 'the frame refused while down was never sent')
  await sleep(700)
  t.equal(a.stats().reconnects + b.stats().reconnects, 0, 'no reconnect after the first connection')
  t.notOk(lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('backplane canary not coming back')), 'no spurious healing')
})

t.test('no uncaught exception or unhandled rejection in any of the above', async (t) => {
  t.same(uncaught, [])
})
