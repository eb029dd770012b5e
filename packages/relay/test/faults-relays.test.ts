import t, { type Test } from 'tap'
import WebSocket from 'ws'
import {
  connected, openSocket, primed, readyStatus, sequenced, sequenceNumbers, startCluster, waitFor, type Cluster, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'

// One cluster for the file (control plane + relays A, B, C on the local Redis
// under its own prefix); each test adds the relay it kills, drains or tunes.
let cluster: Cluster
t.before(async () => {
  cluster = await startCluster(t, { relays: 3 })
})

const seqs = sequenceNumbers
const upTo = (count: number): number[] => Array.from({ length: count }, (_, i) => i)

async function sessionStatus (id: string): Promise<string> {
  return ((await (await fetch(`${cluster.controlPlane.url}/sessions/${id}`)).json()) as { status: string }).status
}

t.test('a relay SIGKILLed mid-stream: operators on the other relays lose nothing, the others stay up and ready', async (t) => {
  const [a, b, c] = cluster.relays as [ServiceProcess, ServiceProcess, ServiceProcess]
  const d = await cluster.addRelay()
  const session = await cluster.createSession()
  const [onB, onC, onD] = await Promise.all([b, c, d].map(async (relay, i) => await connected(t, cluster.wsUrl(relay, session.session_id, `op-${'bcd'[i]}`)))) as [TestSocket, TestSocket, TestSocket]
  const publisher = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [onB, onC, onD])

  const stream = sequenced(publisher, 50)
  t.teardown(() => stream.stop())
  await waitFor('D to receive part of the stream', () => seqs(onD).length >= 40)
  d.child.kill('SIGKILL')
  const killed = await d.exited
  t.equal(killed.signal, 'SIGKILL', 'relay D is gone')
  const sentAtKill = stream.sent
  t.equal((await onD.closed).code, 1006, 'its operator lost the connection (1006)')
  await waitFor('another 2 s of the stream after the kill', () => stream.sent >= sentAtKill + 100, 10_000)
  stream.stop()
  const total = stream.sent
  await waitFor('B and C to receive the last message', () => [onB, onC].every((o) => seqs(o).length >= total), 10_000)

  t.same(seqs(onB), upTo(total), `B got all ${total} messages, in order, no gap`)
  t.same(seqs(onC), upTo(total), `C got all ${total} messages, in order, no gap`)
  t.equal(publisher.socket.readyState, WebSocket.OPEN, 'the publisher stayed connected')
  for (const [name, relay] of [['A', a], ['B', b], ['C', c]] as const) {
    t.equal(relay.child.exitCode, null, `${name} is still running`)
    t.equal(await readyStatus(relay), 200, `${name} is ready`)
  }
})

t.test('SIGTERM drains a relay: /ready 503 at once, new sockets refused with 1001, open ones closed with 1001 after SHUTDOWN_DRAIN, exit 0', async (t) => {
  const drained = await cluster.addRelay({ SHUTDOWN_DRAIN: '1500ms' })
  const session = await cluster.createSession()
  const operator = await connected(t, cluster.wsUrl(drained, session.session_id, 'watcher'))
  const elsewhere = await connected(t, cluster.wsUrl(cluster.relays[1]!, session.session_id, 'elsewhere'))
  const publisher = await connected(t, cluster.wsUrl(drained, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [operator, elsewhere])
  t.equal(await sessionStatus(session.session_id), 'active', 'the session is active')
  t.equal(await readyStatus(drained), 200, 'ready before the signal')

  const closedAt = new Map<TestSocket, number>()
  for (const socket of [operator, publisher]) void socket.closed.then(() => closedAt.set(socket, Date.now()))
  const signalledAt = Date.now()
  drained.child.kill('SIGTERM')
  await drained.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('draining'), 5000)
  const readyAfterSignal = await readyStatus(drained)
  const notReadyAt = Date.now() - signalledAt
  t.equal(readyAfterSignal, 503, `/ready 503 right after the "draining" log line (${notReadyAt} ms after SIGTERM)`)

  const late = openSocket(t, cluster.wsUrl(drained, session.session_id, 'late'))
  const refused = await late.closed
  const refusedAt = Date.now() - signalledAt
  t.equal(refused.code, 1001, `a socket opened during the drain is closed with 1001 (${refusedAt} ms after SIGTERM)`)
  t.match(refused.reason, /drain/, `with a reason ("${refused.reason}")`)
  t.equal(operator.socket.readyState, WebSocket.OPEN, 'the open operator is still connected meanwhile')
  t.equal(publisher.socket.readyState, WebSocket.OPEN, 'and so is the publisher')
  await publisher.send('during the drain')
  await waitFor('the operators to get a message sent during the drain', () =>
    [operator, elsewhere].every((o) => o.messages.some((m) => m.data.toString() === 'during the drain')))
  t.pass('messages still flow during the drain')

  const [operatorClosed, publisherClosed] = await Promise.all([operator.closed, publisher.closed])
  t.equal(operatorClosed.code, 1001, `the operator is closed with 1001 ("${operatorClosed.reason}")`)
  t.equal(publisherClosed.code, 1001, `the publisher is closed with 1001 ("${publisherClosed.reason}")`)
  const closedAfter = Math.min(closedAt.get(operator)!, closedAt.get(publisher)!) - signalledAt
  t.ok(closedAfter >= 1400, `open sockets closed after the drain (${closedAfter} ms after SIGTERM, SHUTDOWN_DRAIN 1500 ms)`)
  const exited = await drained.exited
  const exitedAfter = Date.now() - signalledAt
  t.same(exited, { code: 0, signal: null }, `the process exits 0 (${exitedAfter} ms after SIGTERM)`)
  t.comment(`drain: /ready 503 at ${notReadyAt} ms, late socket refused at ${refusedAt} ms, open sockets closed at ${closedAfter} ms, exit at ${exitedAfter} ms`)

  // The relay releases its publisher before it closes its database pool, so this holds at exit.
  t.equal(await sessionStatus(session.session_id), 'waiting', 'the publisher\'s session is waiting again when the relay has exited')
  t.same(drained.logs.filter((line) => Number(line.level) >= 40 && line.url !== '/ready'), [], 'the relay logged no warning or error (but its /ready 503) while draining')
  t.equal(elsewhere.socket.readyState, WebSocket.OPEN, 'an operator on another relay is not affected')
})

/** A raw ws client that never answers pings (ws ≥ 8.16). */
function silentSocket (t: Test, url: string): { socket: WebSocket, opened: Promise<number>, closed: Promise<{ code: number, at: number }> } {
  const socket = new WebSocket(url, { perMessageDeflate: false, autoPong: false })
  socket.on('error', () => {})
  t.teardown(() => socket.terminate())
  return {
    socket,
    opened: new Promise((resolve, reject) => {
      socket.once('open', () => resolve(Date.now()))
      socket.once('close', (code) => reject(new Error(`closed before open: ${code}`)))
    }),
    closed: new Promise((resolve) => socket.once('close', (code) => resolve({ code, at: Date.now() }))),
  }
}

t.test('liveness: a peer that does not answer pings is closed within ~3 WS_PING_INTERVALs; a dead publisher turns the session back to waiting', async (t) => {
  const interval = 300
  const relay = await cluster.addRelay({ WS_PING_INTERVAL: `${interval}ms` })
  const session = await cluster.createSession()
  const healthy = await connected(t, cluster.wsUrl(relay, session.session_id, 'healthy'))
  const pings = { count: 0 }
  healthy.socket.on('ping', () => pings.count++)

  const silentOperator = silentSocket(t, cluster.wsUrl(relay, session.session_id, 'silent'))
  const operatorOpenedAt = await silentOperator.opened
  const operatorClosed = await silentOperator.closed
  const operatorAfter = operatorClosed.at - operatorOpenedAt
  t.ok(operatorAfter <= 4 * interval, `a silent operator is closed ${operatorAfter} ms after connecting (interval ${interval} ms)`)
  t.equal(operatorClosed.code, 1006, 'by terminating the connection (1006)')

  const silentPublisher = silentSocket(t, cluster.wsUrl(relay, session.session_id, session.client_id, session.stream_key))
  const publisherOpenedAt = await silentPublisher.opened
  t.equal(await sessionStatus(session.session_id), 'active', 'the silent publisher made the session active')
  const publisherClosed = await silentPublisher.closed
  const publisherAfter = publisherClosed.at - publisherOpenedAt
  t.ok(publisherAfter <= 4 * interval, `a silent publisher is closed ${publisherAfter} ms after connecting`)
  const waitingIn = await waitFor('the session to go back to waiting', async () => await sessionStatus(session.session_id) === 'waiting', 5000)
  t.pass(`the session is waiting again ${waitingIn} ms after the publisher was cut`)
  t.comment(`liveness (WS_PING_INTERVAL ${interval} ms): silent operator closed after ${operatorAfter} ms, silent publisher after ${publisherAfter} ms, session waiting ${waitingIn} ms later`)

  t.equal(healthy.socket.readyState, WebSocket.OPEN, 'an operator that answers pings stays connected')
  t.ok(pings.count >= 3, `it was pinged ${pings.count} times meanwhile`)
})
