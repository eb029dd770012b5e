import t, { type Test } from 'tap'
import WebSocket from 'ws'
import {
  connected, openSocket, primed, readyStatus, sequenced, sequenceNumbers, startCluster, startTcpProxy, waitFor, type Cluster, type ServiceProcess, type TcpProxy, type TestSocket,
} from '@streaming-service/testing'

// One cluster for the file: the control plane reaches PostgreSQL directly; the
// two relays reach it only through a throwaway TCP proxy, killed by its PID to
// make the database unreachable for them.
let cluster: Cluster
let proxy: TcpProxy
let relays: [ServiceProcess, ServiceProcess]
t.before(async () => {
  cluster = await startCluster(t, { relays: 0 })
  proxy = await startTcpProxy(t, Number(cluster.db.env.DB_PORT))
  const env = { DB_HOST: '127.0.0.1', DB_PORT: String(proxy.port) }
  relays = await Promise.all([cluster.addRelay(env), cluster.addRelay(env)]) as [ServiceProcess, ServiceProcess]
})

const seqs = sequenceNumbers
const upTo = (count: number): number[] => Array.from({ length: count }, (_, i) => i)

/**
 * A new operator's connection while the stream runs. Refusals arrive as a
 * close after the upgrade, so it is admitted when it receives the stream.
 */
async function admission (t: Test, url: string): Promise<{ admitted: true, socket: TestSocket } | { admitted: false, code: number, reason: string }> {
  const socket = openSocket(t, url)
  const received = socket.waitForMessages(1, 5000).then(
    () => ({ admitted: true as const, socket }),
    () => ({ admitted: false as const, code: 0, reason: 'neither a message nor a close within 5 s' }))
  return await Promise.race([received, socket.closed.then(({ code, reason }) => ({ admitted: false as const, code, reason }))])
}

t.test('PostgreSQL unreachable: open streams keep flowing, new admissions are refused with 1013 naming the database, /ready 503; all recovers when it is back', async (t) => {
  const [r1, r2] = relays
  const session = await cluster.createSession()
  const [on1, on2] = await Promise.all([r1, r2].map(async (relay, i) => await connected(t, cluster.wsUrl(relay, session.session_id, `op-${i + 1}`))))
  const publisher = await connected(t, cluster.wsUrl(r1, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [on1!, on2!])
  t.same(await Promise.all(relays.map(readyStatus)), [200, 200], 'both relays ready before the fault')

  const stream = sequenced(publisher, 50)
  t.teardown(() => stream.stop())
  await waitFor('the operators to receive the stream', () => [on1!, on2!].every((o) => seqs(o).length >= 25))

  await proxy.kill()
  const killedAt = Date.now()
  const sentAtKill = stream.sent
  const notReadyIn = await waitFor('both relays\' /ready to answer 503', async () =>
    (await Promise.all(relays.map(readyStatus))).every((status) => status === 503), 10_000, 50)
  t.pass(`/ready 503 on both relays ${notReadyIn} ms after the database became unreachable`)

  for (const [i, relay] of relays.entries()) {
    const refused = await admission(t, cluster.wsUrl(relay, session.session_id, `newcomer-${i + 1}`))
    t.same(refused.admitted, false, `a new operator on relay ${i + 1} is refused`)
    if (refused.admitted) continue
    t.equal(refused.code, 1013, `with 1013 (try again later) on relay ${i + 1}`)
    t.match(refused.reason, /database/, `and a reason naming the database ("${refused.reason}")`)
  }
  const publisherAgain = await admission(t, cluster.wsUrl(r2, session.session_id, session.client_id, session.stream_key))
  t.match(publisherAgain, { admitted: false, code: 1013 }, 'a publisher reconnecting is refused with 1013 too, and the open one is not replaced')

  await waitFor('another 2 s of the stream with the database gone', () => stream.sent >= sentAtKill + 100, 10_000)
  const sentInOutage = stream.sent
  await waitFor('the operators to get everything sent so far', () => [on1!, on2!].every((o) => seqs(o).length >= sentInOutage), 5000)
  t.same(seqs(on1!), upTo(seqs(on1!).length), 'the operator on the publisher\'s relay got every message, in order, no gap')
  t.same(seqs(on2!), upTo(seqs(on2!).length), 'the operator on the other relay got every message, in order, no gap')
  t.ok(Date.now() - killedAt >= 2000, `the stream kept flowing for ${Date.now() - killedAt} ms of outage`)

  const restarted = await startTcpProxy(t, Number(cluster.db.env.DB_PORT), proxy.port)
  t.equal(restarted.port, proxy.port, 'the database is reachable again on the same port')
  const backAt = Date.now()
  let attempts = 0
  let admitted: TestSocket | undefined
  await waitFor('a new operator to be admitted again', async () => {
    const outcome = await admission(t, cluster.wsUrl(r2, session.session_id, `returning-${attempts++}`))
    if (outcome.admitted) admitted = outcome.socket
    return outcome.admitted
  }, 15_000, 100)
  const admittedIn = Date.now() - backAt
  t.pass(`a new operator is admitted ${admittedIn} ms after the database came back (${attempts} attempt(s)) and receives the stream`)
  const readyIn = await waitFor('both relays\' /ready to answer 200', async () =>
    (await Promise.all(relays.map(readyStatus))).every((status) => status === 200), 15_000, 50)
  t.pass(`/ready 200 on both relays ${readyIn} ms after the database came back`)
  t.comment(`database outage: /ready 503 after ${notReadyIn} ms; back: admissions after ${admittedIn} ms, /ready 200 after ${readyIn} ms`)

  stream.stop()
  const total = stream.sent
  await waitFor('the operators, the admitted one too, to get the last message', () =>
    [on1!, on2!].every((o) => seqs(o).length >= total) && admitted !== undefined && seqs(admitted).at(-1) === total - 1, 5000)
  t.same(seqs(on1!), upTo(total), `operator on relay 1: all ${total} messages across the outage`)
  t.same(seqs(on2!), upTo(total), `operator on relay 2: all ${total} messages across the outage`)
  t.ok(admitted !== undefined && seqs(admitted).at(-1) === total - 1, 'the operator admitted after the outage is on the stream')
  t.equal(publisher.socket.readyState, WebSocket.OPEN, 'the publisher stayed connected throughout')
  t.ok(relays.every((relay) => relay.child.exitCode === null && relay.child.signalCode === null), 'no relay exited')
})
