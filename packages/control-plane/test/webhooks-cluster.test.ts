import t from 'tap'
import type { SessionEventList } from '@streaming-service/protocol'
import {
  connected, metric, sequenced, sequenceNumbers, startCluster, startService, waitFor, type ServiceProcess,
} from '@streaming-service/testing'
import { startReceiver, webhookSecret } from './webhook-receiver.js'

// SPEC §12 with several control planes and a crash: at least once with a
// stable webhook-id, in order per session, never twice at the same time, a
// slow receiver holding back its own session only, the stream untouched.

const fast = { WEBHOOK_POLL_INTERVAL: '100ms', WEBHOOK_RETRY_BACKOFF: '100ms', WEBHOOK_RETRY_BACKOFF_MAX: '400ms' }

async function eventLog (controlPlane: ServiceProcess, sessionId: string): Promise<SessionEventList['events']> {
  const res = await fetch(`${controlPlane.url}/sessions/${sessionId}/events`)
  if (res.status !== 200) throw new Error(`GET events: ${res.status} ${await res.text()}`)
  return (await res.json() as SessionEventList).events
}

t.test('receiver down (503), control plane killed -9, a new one started, receiver back: every event arrives, in order per session, with the refused attempts\' webhook-ids; the stream flowed throughout', async (t) => {
  const receiver = await startReceiver(t, () => 503)
  const cluster = await startCluster(t, { relays: 1, env: { ...fast, WEBHOOK_TIMEOUT: '1s', WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: webhookSecret() } })
  const [relay] = cluster.relays
  const live = await cluster.createSession()
  const other = await cluster.createSession()
  const publisher = await connected(t, cluster.wsUrl(relay!, live.session_id, live.client_id, live.stream_key))
  const operator = await connected(t, cluster.wsUrl(relay!, live.session_id, 'op-1'))
  const stream = sequenced(publisher, 50)
  t.teardown(() => stream.stop())

  await waitFor('both sessions\' first events to be refused twice', () => [live, other].every((s) =>
    receiver.received.filter((hook) => hook.payload.session_id === s.session_id).length >= 2), 15_000)
  const refused = new Map(receiver.received.map((hook) => [hook.payload.id, hook.headers['webhook-id']]))
  cluster.controlPlane.child.kill('SIGKILL')
  await cluster.controlPlane.exited
  const atKill = sequenceNumbers(operator).length

  // Changes while no control plane runs: the relay records them itself.
  const late = await connected(t, cluster.wsUrl(relay!, live.session_id, 'op-2'))
  await late.close()
  await waitFor('the stream to keep flowing without a control plane', () => sequenceNumbers(operator).length >= atKill + 50, 30_000)
  receiver.answer = () => 204
  const successor = await startService(t, ['control-plane'], cluster.env)
  const restartedAt = Date.now()
  await fetch(`${successor.url}/sessions/${other.session_id}`, { method: 'DELETE' })

  const expected = {
    [live.session_id]: ['session.created', 'session.active', 'operator.joined', 'operator.joined', 'operator.left'],
    [other.session_id]: ['session.created', 'session.finished'],
  }
  await waitFor('every event to be delivered', async () => {
    for (const [id, types] of Object.entries(expected)) {
      const log = await eventLog(successor, id)
      if (log.length < types.length || log.some((event) => event.delivery.state !== 'delivered')) return false
    }
    return true
  }, 30_000, 100)
  t.comment(`all delivered ${Date.now() - restartedAt} ms after the new control plane started (lease of the killed one: 7 s)`)

  for (const [id, types] of Object.entries(expected)) {
    const log = await eventLog(successor, id)
    t.same(log.map((event) => event.type), types, `${id}: the event log`)
    const accepted = receiver.accepted().filter((hook) => hook.payload.session_id === id)
    t.same(accepted.map((hook) => hook.payload.id), log.map((event) => event.id), `${id}: every event accepted once, in the session's order`)
    t.ok(log.slice(0, 1).every((event) => event.delivery.attempts >= 3), 'the head was refused before it was accepted')
  }
  for (const [eventId, webhookId] of refused) {
    const accepted = receiver.accepted().find((hook) => hook.payload.id === eventId)
    t.equal(accepted?.headers['webhook-id'], webhookId, `event ${eventId}: accepted with the refused attempts' webhook-id`)
  }
  const seen = sequenceNumbers(operator)
  t.ok(seen.length > atKill + 50, `the operator kept receiving (${seen.length} messages, ${atKill} at the kill)`)
  t.ok(seen.every((n, i) => i === 0 || n === seen[i - 1]! + 1), 'with no gap and in order')
  t.equal(publisher.socket.readyState, publisher.socket.OPEN, 'the publisher was never disturbed')
})

t.test('two control planes: no event posted twice at the same time, and a receiver taking 5 s per request for one session does not delay the others', async (t) => {
  let slowId = ''
  const receiver = await startReceiver(t, async (hook) => {
    if (hook.payload.session_id === slowId) await new Promise((resolve) => setTimeout(resolve, 5000))
    return 204
  })
  const cluster = await startCluster(t, { relays: 0, env: { ...fast, WEBHOOK_TIMEOUT: '10s', WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: webhookSecret() } })
  const second = await startService(t, ['control-plane'], cluster.env)
  const controlPlanes = [cluster.controlPlane, second]
  const finish = async (controlPlane: ServiceProcess, id: string) => {
    const res = await fetch(`${controlPlane.url}/sessions/${id}`, { method: 'DELETE' })
    t.equal(res.status, 204)
  }

  const slow = await cluster.createSession()
  slowId = slow.session_id
  await finish(second, slow.session_id)
  await waitFor('the slow session\'s first event to be in flight', () => receiver.received.some((hook) => hook.payload.session_id === slowId), 30_000)
  const startedAt = Date.now()
  const others = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const session = await cluster.createSession()
    await finish(controlPlanes[i % 2]!, session.session_id)
    return session.session_id
  }))
  const othersDone = () => others.every((id) => receiver.accepted().filter((hook) => hook.payload.session_id === id).length === 2)
  await waitFor('the other sessions\' 40 events', othersDone, 15_000)
  const othersMs = Date.now() - startedAt
  const slowDelivered = receiver.accepted().filter((hook) => hook.payload.session_id === slowId).length
  t.comment(`20 other sessions (40 events) delivered in ${othersMs} ms while the slow receiver held its session's first event`)
  t.ok(slowDelivered <= 1, `meanwhile the slow session got ${slowDelivered} of its 2 events`)
  t.ok(othersMs < 5000, 'the others were not held back by the slow session\'s 5 s requests')

  await waitFor('the slow session\'s two events, one after the other', () => receiver.accepted().filter((hook) => hook.payload.session_id === slowId).length === 2, 20_000)
  const slowHooks = receiver.received.filter((hook) => hook.payload.session_id === slowId)
  t.same(slowHooks.map((hook) => hook.payload.type), ['session.created', 'session.finished'], 'the slow session in order, each once')
  t.ok(slowHooks[1]!.at >= slowHooks[0]!.answeredAt!, 'its second event was posted only after the first was answered')

  t.equal(receiver.maxConcurrentPerId, 1, 'no webhook-id was ever in flight twice at once')
  const ids = receiver.accepted().map((hook) => hook.payload.id)
  t.equal(new Set(ids).size, ids.length, `${ids.length} events, each accepted once`)
  t.equal(ids.length, 42)
  for (const id of others) {
    t.same(receiver.accepted().filter((hook) => hook.payload.session_id === id).map((hook) => hook.payload.type), ['session.created', 'session.finished'])
  }
  const split = await Promise.all(controlPlanes.map(async (cp) => await metric(cp, 'webhook_deliveries_total', { result: 'delivered' })))
  t.comment(`delivered by control plane: ${split.join(' / ')}`)
  t.equal(split[0]! + split[1]!, 42, 'the two control planes delivered 42 between them')
})
