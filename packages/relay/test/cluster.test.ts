import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import {
  connected, openSocket, primed, startCluster, waitFor, type Cluster, type TestSocket,
} from '@streaming-service/testing'

// One cluster (control plane + 3 relays, real Redis under its own prefix) for the file.
let cluster: Cluster
t.before(async () => {
  cluster = await startCluster(t, { relays: 3, env: { SESSION_MAX_OPERATORS: '4', WS_MAX_MESSAGE_SIZE: '64KB', PRESENCE_TTL: '1500ms' } })
})

async function getSession (id: string): Promise<Record<string, unknown>> {
  return await (await fetch(`${cluster.controlPlane.url}/sessions/${id}`)).json() as Record<string, unknown>
}

async function operatorsOf (id: string): Promise<Array<{ user_id: string, online: boolean }>> {
  const body = await (await fetch(`${cluster.controlPlane.url}/sessions/${id}/operators`)).json() as { operators: Array<{ user_id: string, online: boolean }> }
  return body.operators
}

t.test('500 mixed binary and text messages from a publisher on relay A arrive byte-exact and in order on A, B and C', async (t) => {
  const [a, b, c] = cluster.relays as [typeof cluster.relays[0], typeof cluster.relays[0], typeof cluster.relays[0]]
  const session = await cluster.createSession()
  const operators = await Promise.all([a, b, c].map(async (relay, i) => await connected(t, cluster.wsUrl(relay, session.session_id, `op-${i}`))))
  const publisher = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, operators)

  const sent: Array<{ data: Buffer, binary: boolean }> = []
  for (let i = 0; i < 500; i++) {
    const binary = i % 3 !== 0
    const data = binary ? randomBytes(1 + Math.floor(Math.random() * 32 * 1024)) : Buffer.from(`text message ${i} ✓ ${'x'.repeat(i % 50)}`)
    sent.push({ data, binary })
    await publisher.send(binary ? data : data.toString())
  }
  for (const [i, operator] of operators.entries()) {
    const received = await operator.waitForMessages(500, 20_000)
    const mismatch = received.findIndex((m, k) => m.binary !== sent[k]!.binary || !m.data.equals(sent[k]!.data))
    t.equal(mismatch, -1, `operator on relay ${'ABC'[i]} got every message byte for byte, in order, with its type`)
    t.equal(operator.messages.length, 500, 'and nothing else')
  }
})

t.test('operators\' own messages are not relayed', async (t) => {
  const session = await cluster.createSession()
  const [a, b] = cluster.relays
  const talker = await connected(t, cluster.wsUrl(a!, session.session_id, 'talker'))
  const listener = await connected(t, cluster.wsUrl(b!, session.session_id, 'listener'))
  const publisher = await connected(t, cluster.wsUrl(a!, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [talker, listener])
  await talker.send('from an operator')
  await publisher.send('from the publisher')
  await listener.waitForMessages(1)
  await talker.waitForMessages(1)
  t.same(listener.messages.map((m) => m.data.toString()), ['from the publisher'])
  t.same(talker.messages.map((m) => m.data.toString()), ['from the publisher'])
})

t.test('refusals are close codes with a reason: 4400, 4401, 4404, 4410', async (t) => {
  const relay = cluster.relays[0]!
  const session = await cluster.createSession()
  const cases: Array<[string, string, number]> = [
    ['malformed session id', `ws://127.0.0.1:${relay.port}/ws/stream/not-a-uuid/someone`, 4400],
    ['malformed user id', cluster.wsUrl(relay, session.session_id, 'bad user!'), 4400],
    ['user id longer than 128', cluster.wsUrl(relay, session.session_id, 'u'.repeat(129)), 4400],
    ['publisher without a key', cluster.wsUrl(relay, session.session_id, session.client_id), 4401],
    ['publisher with a wrong key', cluster.wsUrl(relay, session.session_id, session.client_id, 'wrong'), 4401],
    ['unknown session', cluster.wsUrl(relay, randomUUID(), 'someone'), 4404],
  ]
  for (const [what, url, code] of cases) {
    const closed = await openSocket(t, url).closed
    t.equal(closed.code, code, what)
    t.ok(closed.reason.length > 0, `${what}: with a reason ("${closed.reason}")`)
  }
  t.equal((await openSocket(t, cluster.wsUrl(relay, session.session_id, 'u'.repeat(128))).opened, undefined), undefined, 'a 128-character user id is fine')
  await fetch(`${cluster.controlPlane.url}/sessions/${session.session_id}`, { method: 'DELETE' })
  t.equal((await openSocket(t, cluster.wsUrl(relay, session.session_id, 'late')).closed).code, 4410, 'finished session')
  t.equal((await openSocket(t, cluster.wsUrl(relay, session.session_id, session.client_id, session.stream_key)).closed).code, 4410, 'finished session, publisher')
})

t.test('a plain HTTP request to the stream route is 426 in the error shape and admits nothing', async (t) => {
  const session = await cluster.createSession()
  const url = cluster.wsUrl(cluster.relays[0]!, session.session_id, session.client_id, session.stream_key).replace('ws://', 'http://')
  const res = await fetch(url)
  t.equal(res.status, 426)
  t.same(await res.json(), { error: { code: 'upgrade_required', message: 'this endpoint takes WebSocket connections only' } })
  t.equal((await getSession(session.session_id)).status, 'waiting', 'the publisher was not admitted')
  await fetch(cluster.wsUrl(cluster.relays[0]!, session.session_id, 'curious').replace('ws://', 'http://'))
  t.same(await operatorsOf(session.session_id), [], 'no operator registered')
})

t.test('a message over WS_MAX_MESSAGE_SIZE closes the publisher with 1009 and nothing of it is relayed', async (t) => {
  const [a, b] = cluster.relays
  const session = await cluster.createSession()
  const operator = await connected(t, cluster.wsUrl(b!, session.session_id, 'watcher'))
  const publisher = await connected(t, cluster.wsUrl(a!, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [operator])
  publisher.socket.send(randomBytes(64 * 1024 + 1))
  t.equal((await publisher.closed).code, 1009)
  const again = await connected(t, cluster.wsUrl(a!, session.session_id, session.client_id, session.stream_key))
  await again.send(randomBytes(64 * 1024))
  const [received] = await operator.waitForMessages(1)
  t.equal(received!.data.length, 64 * 1024, 'the next message (at the limit) is the first the operator gets')
})

t.test('SESSION_MAX_OPERATORS holds under concurrent joins on different relays; known operators always reconnect', async (t) => {
  const session = await cluster.createSession()
  const attempts = Array.from({ length: 12 }, (_, i) => openSocket(t, cluster.wsUrl(cluster.relays[i % 3]!, session.session_id, `op-${i}`)))
  // Refusals arrive as a close after the upgrade: a socket is admitted when
  // it receives the publisher's probe, refused when it is closed.
  const publisher = await connected(t, cluster.wsUrl(cluster.relays[0]!, session.session_id, session.client_id, session.stream_key))
  const closeCodes = new Map<TestSocket, number>()
  for (const attempt of attempts) void attempt.closed.then(({ code }) => closeCodes.set(attempt, code))
  await waitFor('every attempt to be admitted or refused', async () => {
    await publisher.send('probe')
    return attempts.every((a) => closeCodes.has(a) || a.messages.length > 0)
  }, 10_000, 100)
  const outcomes = attempts.map((a) => closeCodes.get(a) ?? 'open')
  t.equal(outcomes.filter((o) => o === 'open').length, 4, 'exactly the limit got in')
  t.equal(outcomes.filter((o) => o === 4409).length, 8, 'the rest were refused with 4409')
  t.equal((await operatorsOf(session.session_id)).length, 4, 'four operators registered')
  const admitted = outcomes.findIndex((o) => o === 'open')
  for (const relay of cluster.relays) {
    await connected(t, cluster.wsUrl(relay, session.session_id, `op-${admitted}`))
  }
  t.pass('a registered operator connects again, several times at once, on any relay')
})

t.test('a newer publisher connection on another relay replaces the older one (4409) and its stream reaches everyone', async (t) => {
  const [a, b, c] = cluster.relays
  const session = await cluster.createSession()
  const operator = await connected(t, cluster.wsUrl(c!, session.session_id, 'watcher'))
  const first = await connected(t, cluster.wsUrl(a!, session.session_id, session.client_id, session.stream_key))
  await primed(first, [operator])
  const second = await connected(t, cluster.wsUrl(b!, session.session_id, session.client_id, session.stream_key))
  const closed = await first.closed
  t.equal(closed.code, 4409)
  t.match(closed.reason, /replaced/)
  await second.send('from the new publisher')
  await operator.waitForMessages(1)
  t.equal(operator.messages.at(-1)!.data.toString(), 'from the new publisher')
  t.equal((await getSession(session.session_id)).status, 'active')
  await waitFor('publisher_online', async () => (await getSession(session.session_id)).publisher_online === true)
  await second.close()
  await waitFor('the session to go back to waiting', async () => (await getSession(session.session_id)).status === 'waiting')
  t.pass('publisher gone: waiting again')
})

t.test('DELETE /sessions/:id closes every socket of the session on every relay within 1 s', async (t) => {
  const session = await cluster.createSession()
  const sockets = await Promise.all([
    ...cluster.relays.map(async (relay, i) => await connected(t, cluster.wsUrl(relay, session.session_id, `op-${i}`))),
    connected(t, cluster.wsUrl(cluster.relays[0]!, session.session_id, session.client_id, session.stream_key)),
  ])
  await primed(sockets[3]!, sockets.slice(0, 3))
  const started = Date.now()
  t.equal((await fetch(`${cluster.controlPlane.url}/sessions/${session.session_id}`, { method: 'DELETE' })).status, 204)
  const closes = await Promise.all(sockets.map(async (s) => await s.closed))
  const elapsed = Date.now() - started
  t.same(closes.map((c) => c.code), [4410, 4410, 4410, 4410])
  t.ok(elapsed < 1000, `all closed ${elapsed} ms after DELETE`)
})

t.test('states: waiting until the publisher connects, active while it is, waiting again after; started_at is the first time', async (t) => {
  const session = await cluster.createSession()
  t.match(await getSession(session.session_id), { status: 'waiting', started_at: null, publisher_online: false })
  const publisher = await connected(t, cluster.wsUrl(cluster.relays[1]!, session.session_id, session.client_id, session.stream_key))
  const active = await getSession(session.session_id)
  t.equal(active.status, 'active', 'active as soon as the publisher is admitted')
  // Presence is written right after the upgrade, asynchronously.
  await waitFor('publisher_online', async () => (await getSession(session.session_id)).publisher_online === true)
  await publisher.close()
  await waitFor('waiting', async () => (await getSession(session.session_id)).status === 'waiting')
  const again = await connected(t, cluster.wsUrl(cluster.relays[2]!, session.session_id, session.client_id, session.stream_key))
  const second = await getSession(session.session_id)
  t.equal(second.status, 'active')
  t.equal(second.started_at, active.started_at, 'started_at keeps the first start')
  await again.close()
})

t.test('presence spans relays and expires after a relay is SIGKILLed; its publisher\'s session goes back to waiting', async (t) => {
  const doomed = await cluster.addRelay()
  const session = await cluster.createSession()
  await connected(t, cluster.wsUrl(cluster.relays[0]!, session.session_id, 'survivor'))
  await connected(t, cluster.wsUrl(doomed, session.session_id, 'victim'))
  await connected(t, cluster.wsUrl(doomed, session.session_id, session.client_id, session.stream_key))
  await waitFor('everyone online', async () =>
    (await operatorsOf(session.session_id)).every((o) => o.online) && (await getSession(session.session_id)).publisher_online === true)
  doomed.child.kill('SIGKILL')
  await doomed.exited
  const expiredIn = await waitFor('the dead relay\'s connections to expire', async () => {
    const operators = await operatorsOf(session.session_id)
    return operators.find((o) => o.user_id === 'victim')?.online === false && (await getSession(session.session_id)).publisher_online === false
  }, 10_000)
  t.ok(expiredIn < 10_000, `expired ${expiredIn} ms after the kill (PRESENCE_TTL 1.5 s)`)
  t.same((await operatorsOf(session.session_id)).map((o) => [o.user_id, o.online]), [['survivor', true], ['victim', false]])
  await waitFor('the session to go back to waiting', async () => (await getSession(session.session_id)).status === 'waiting', 10_000)
  t.pass('the control plane put the session of the dead publisher back to waiting')
})

t.test('/metrics: relays expose connections, messages and bytes, drops, latency and backplane counters; the control plane sessions by state', async (t) => {
  const [a, b] = cluster.relays
  const session = await cluster.createSession()
  const operator = await connected(t, cluster.wsUrl(b!, session.session_id, 'metered'))
  const publisher = await connected(t, cluster.wsUrl(a!, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [operator])
  const scrape = async (url: string) => await (await fetch(`${url}/metrics`)).text()
  /** The value of the first sample whose line starts with `prefix` (a name and its leading labels). */
  const value = (text: string, prefix: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(prefix))
    return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  const onA = await scrape(a!.url)
  const onB = await scrape(b!.url)
  t.ok(value(onA, 'relay_connections{role="publisher"') >= 1, 'publisher connections on A')
  t.ok(value(onB, 'relay_connections{role="operator"') >= 1, 'operator connections on B')
  t.ok(value(onA, 'relay_messages_total{direction="in"') >= 1, 'messages in on A')
  t.ok(value(onB, 'relay_bytes_total{direction="out"') >= 1, 'bytes out on B')
  t.match(onB, /relay_latency_seconds_bucket\{[^}]*path="remote"/, 'latency through the backplane on B')
  for (const name of ['relay_frames_dropped_total', 'relay_disconnects_total', 'backplane_frames_dropped_total', 'backplane_publish_errors_total', 'backplane_reconnects_total', 'process_cpu_seconds_total']) {
    t.match(onA, new RegExp(`^# TYPE ${name} `, 'm'), `${name} on relays`)
  }
  const onControlPlane = await scrape(cluster.controlPlane.url)
  t.ok(value(onControlPlane, 'sessions{status="active"') >= 1, 'sessions{status="active"} on the control plane')
  t.match(onControlPlane, /^sessions\{status="waiting"/m)
})
