import t from 'tap'
import {
  connected, primed, readyStatus, sequenced, sequenceNumbers, startCluster, startRedisServer, waitFor, type Cluster, type RedisServer, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'

// One cluster for the file (control plane + relays A, B, C) whose only Redis is
// a throwaway redis-server on a spare port, so it can be killed by its PID.
let redis: RedisServer
let cluster: Cluster
t.before(async () => {
  redis = await startRedisServer(t)
  cluster = await startCluster(t, { relays: 3, redisUrl: redis.url })
})

const seqs = sequenceNumbers
const strictlyIncreasing = (values: number[]): boolean => values.every((v, i) => i === 0 || v > values[i - 1]!)
const missing = (values: number[], upTo: number): number => upTo - new Set(values).size

t.test('Redis killed (-9) mid-stream and back after 2 s: local delivery goes on, /ready follows Redis, remote delivery resumes in < 2 s, nothing exits or reorders', async (t) => {
  const [a, b, c] = cluster.relays as [ServiceProcess, ServiceProcess, ServiceProcess]
  const session = await cluster.createSession()
  const [onA, onB, onC] = await Promise.all([a, b, c].map(async (relay, i) => await connected(t, cluster.wsUrl(relay, session.session_id, `op-${'abc'[i]}`)))) as [TestSocket, TestSocket, TestSocket]
  const publisher = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [onA, onB, onC])
  t.same(await Promise.all(cluster.relays.map(readyStatus)), [200, 200, 200], 'every relay ready before the fault')

  const stream = sequenced(publisher, 50)
  t.teardown(() => stream.stop())
  await waitFor('B and C to receive the stream', () => seqs(onB).length >= 25 && seqs(onC).length >= 25)

  await redis.kill()
  const killedAt = Date.now()
  const atKill = { a: onA.messages.length, b: onB.messages.length, c: onC.messages.length }
  const notReadyIn = await waitFor('every relay\'s /ready to answer 503', async () =>
    (await Promise.all(cluster.relays.map(readyStatus))).every((status) => status === 503), 1800, 50)
  t.pass(`/ready 503 on A, B and C ${notReadyIn} ms after the kill`)
  // Local delivery: the operator on the publisher's relay keeps receiving while Redis is gone.
  await waitFor('the operator on A to keep receiving', () => onA.messages.length >= atKill.a + 50, 1900, 20)
  t.ok(Date.now() - killedAt < 2000, 'the operator on A received 50 more messages during the outage')
  const statuses = await Promise.all(cluster.relays.map(readyStatus))
  t.same(statuses, [503, 503, 503], '/ready still 503 late in the outage')

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 2000 - (Date.now() - killedAt))))
  const duringOutage = { a: onA.messages.length - atKill.a, b: onB.messages.length - atKill.b, c: onC.messages.length - atKill.c }
  await redis.start()
  const backAt = Date.now()
  const atBack = { b: onB.messages.length, c: onC.messages.length }
  const [resumedB, resumedC] = await Promise.all([
    waitFor('delivery to B to resume', () => onB.messages.length > atBack.b, 5000, 5),
    waitFor('delivery to C to resume', () => onC.messages.length > atBack.c, 5000, 5),
  ])
  t.comment(`Redis down ${backAt - killedAt} ms; during it A got ${duringOutage.a}, B ${duringOutage.b}, C ${duringOutage.c} messages`)
  t.comment(`delivery resumed ${resumedB} ms (B) and ${resumedC} ms (C) after Redis answered PING again`)
  t.ok(resumedB < 2000, `delivery to B resumed within 2 s (${resumedB} ms)`)
  t.ok(resumedC < 2000, `delivery to C resumed within 2 s (${resumedC} ms)`)
  const readyIn = await waitFor('every relay\'s /ready to answer 200', async () =>
    (await Promise.all(cluster.relays.map(readyStatus))).every((status) => status === 200), 10_000, 50)
  t.pass(`/ready 200 on A, B and C ${readyIn} ms after Redis was back`)
  t.comment(`/ready: 503 ${notReadyIn} ms after the kill, 200 again ${readyIn} ms after Redis was back`)

  // A second more of streaming after recovery, then compare.
  const sentAtRecovery = stream.sent
  await waitFor('B and C to get a second of the stream after recovery', () =>
    [onB, onC].every((o) => seqs(o).filter((s) => s >= sentAtRecovery).length >= 50), 5000)
  stream.stop()
  const total = stream.sent
  await waitFor('A to get every message', () => seqs(onA).length === total, 5000)
  await waitFor('B and C to get the last message', () => [onB, onC].every((o) => seqs(o).at(-1) === total - 1), 5000)

  t.same(seqs(onA), Array.from({ length: total }, (_, i) => i), 'A (the publisher\'s relay) got every message, in order, no gap')
  for (const [name, operator] of [['B', onB], ['C', onC]] as const) {
    const received = seqs(operator)
    t.ok(strictlyIncreasing(received), `${name}: sequence numbers strictly increasing (no reordering, no duplicate)`)
    t.comment(`${name}: ${received.length}/${total} messages, ${missing(received, total)} lost to the outage`)
  }
  for (const [name, proc] of [['control plane', cluster.controlPlane], ['A', a], ['B', b], ['C', c]] as const) {
    t.equal(proc.child.exitCode, null, `${name} did not exit`)
    t.equal(proc.child.signalCode, null, `${name} was not killed`)
  }
  t.equal(publisher.socket.readyState, publisher.socket.OPEN, 'the publisher stayed connected')
  t.ok([onA, onB, onC].every((o) => o.socket.readyState === o.socket.OPEN), 'every operator stayed connected')
})
