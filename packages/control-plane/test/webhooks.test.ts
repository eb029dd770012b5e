import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { streamUrl, type SessionEventList } from '@streaming-service/protocol'
import { connected, metric, startCluster, startService, tempDir, waitFor, type Cluster } from '@streaming-service/testing'
import { startReceiver, webhookSecret, type ReceivedWebhook } from './webhook-receiver.js'

// SPEC §12: every change of a session reaches the platform's receivers as a
// signed webhook, in order, at least once, from the outbox in PostgreSQL.

const fast = { WEBHOOK_POLL_INTERVAL: '100ms', WEBHOOK_RETRY_BACKOFF: '100ms', WEBHOOK_RETRY_BACKOFF_MAX: '400ms', WEBHOOK_TIMEOUT: '2s' }

async function events (cluster: Cluster, sessionId: string): Promise<SessionEventList['events']> {
  const res = await fetch(`${cluster.controlPlane.url}/sessions/${sessionId}/events`, { headers: cluster.authHeaders })
  if (res.status !== 200) throw new Error(`GET events: ${res.status} ${await res.text()}`)
  return (await res.json() as SessionEventList).events
}

const headersOf = (hook: ReceivedWebhook): Record<string, string> => Object.fromEntries(Object.entries(hook.headers).map(([key, value]) => [key, String(value)]))

t.test('a session\'s life reaches WEBHOOK_URL and its webhook_url: six events, signed, unique ids, in order; the event log shows them delivered', async (t) => {
  const secret = webhookSecret()
  const [global, own] = await Promise.all([startReceiver(t), startReceiver(t)])
  const cluster = await startCluster(t, { relays: 1, env: { ...fast, WEBHOOK_URL: global.url, WEBHOOK_SECRET: secret } })
  const [relay] = cluster.relays
  const res = await fetch(`${cluster.controlPlane.url}/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: crypto.randomUUID(), webhook_url: own.url }),
  })
  t.equal(res.status, 201)
  const session = await res.json() as { session_id: string, client_id: string, stream_key: string }
  const delivered = async (count: number) => await waitFor(`${count} events at both receivers`, () => global.accepted().length >= count && own.accepted().length >= count, 30_000)

  const publisher = await connected(t, cluster.wsUrl(relay!, session.session_id, session.client_id, session.stream_key))
  await delivered(2)
  const operator = await connected(t, cluster.wsUrl(relay!, session.session_id, 'op-1'))
  await delivered(3)
  await operator.close()
  await delivered(4)
  await publisher.close()
  await delivered(5)
  const deleted = await fetch(`${cluster.controlPlane.url}/sessions/${session.session_id}`, { method: 'DELETE' })
  t.equal(deleted.status, 204)
  await delivered(6)

  const expected = ['session.created', 'session.active', 'operator.joined', 'operator.left', 'session.waiting', 'session.finished']
  const verifier = new Webhook(secret)
  for (const [name, receiver] of [['WEBHOOK_URL', global], ['webhook_url', own]] as const) {
    const hooks = receiver.accepted()
    t.same(hooks.map((hook) => hook.payload.type), expected, `${name}: exactly the six events, in order`)
    t.equal(new Set(hooks.map((hook) => hook.headers['webhook-id'])).size, 6, `${name}: six distinct webhook-ids`)
    for (const hook of hooks) {
      t.same(verifier.verify(hook.body, headersOf(hook)), hook.payload, `${name}: ${hook.payload.type} has a valid signature`)
      t.equal(hook.headers['webhook-id'], hook.payload.id, 'webhook-id is the event id')
      t.equal(hook.payload.session_id, session.session_id)
      t.notOk(hook.body.includes(session.stream_key), 'no stream key in the payload')
    }
    t.match(hooks[2]!.payload.data, { user_id: 'op-1', first_join: true })
    t.match(hooks[5]!.payload.data, { reason: 'deleted' })
  }
  t.throws(() => new Webhook(webhookSecret()).verify(global.accepted()[0]!.body, headersOf(global.accepted()[0]!)), 'another secret does not verify')

  const log = await events(cluster, session.session_id)
  t.same(log.map((event) => event.type), expected, 'GET /sessions/:id/events: the same events in order')
  t.same(log.map((event) => event.id), global.accepted().map((hook) => hook.payload.id), 'with the same ids')
  t.ok(log.every((event) => event.delivery.state === 'delivered' && event.delivery.attempts === 1 && event.delivery.delivered_at !== null), 'each delivered at the first attempt')
  const latencies = global.accepted().map((hook) => hook.at - Date.parse(hook.payload.occurred_at))
  t.comment(`delivery latency (event to receiver), ms: ${latencies.join(', ')}`)
  t.equal(await metric(cluster.controlPlane, 'webhook_deliveries_total', { result: 'delivered' }), 6)
  t.equal(await metric(cluster.controlPlane, 'webhook_queue_depth'), 0)
})

t.test('a receiver refusing until WEBHOOK_RETRY_FOR runs out: the event is failed (state, metric, log), the session\'s next one goes on', async (t) => {
  const receiver = await startReceiver(t, () => 503)
  const cluster = await startCluster(t, { relays: 1, env: { ...fast, WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: webhookSecret(), WEBHOOK_RETRY_FOR: '2s' } })
  const session = await cluster.createSession()
  await waitFor('the created event to be given up', async () => (await events(cluster, session.session_id))[0]!.delivery.state === 'failed', 15_000)
  const [created] = await events(cluster, session.session_id)
  const attempts = receiver.received.filter((hook) => hook.payload.id === created!.id)
  const span = attempts.at(-1)!.at - attempts[0]!.at
  t.comment(`given up after ${attempts.length} attempts over ${span} ms (WEBHOOK_RETRY_FOR 2 s, backoff 100-400 ms)`)
  t.ok(span >= 1800 && span < 4000, `retried for about WEBHOOK_RETRY_FOR (${span} ms)`)
  t.ok(attempts.length >= 3, `retried several times with backoff (${attempts.length} attempts)`)
  t.equal(created!.delivery.attempts, attempts.length, 'every attempt counted')
  t.match(created!.delivery.last_error, /503/, 'the last error is shown')
  t.equal(new Set(attempts.map((hook) => hook.headers['webhook-id'])).size, 1, 'one webhook-id on every attempt')
  const gaps = attempts.slice(1).map((hook, i) => hook.at - attempts[i]!.at)
  t.comment(`gaps between attempts, ms: ${gaps.join(', ')}`)
  t.equal(await metric(cluster.controlPlane, 'webhook_deliveries_total', { result: 'failed' }), 1, 'webhook_deliveries_total{result="failed"}')
  t.ok(cluster.controlPlane.logs.some((line) => line.msg === 'webhook given up: refused for WEBHOOK_RETRY_FOR' && line.eventId === created!.id), 'logged as an error')

  receiver.answer = () => 204
  await fetch(`${cluster.controlPlane.url}/sessions/${session.session_id}`, { method: 'DELETE' })
  await waitFor('session.finished to be delivered after the failed one', async () => (await events(cluster, session.session_id))[1]?.delivery.state === 'delivered', 30_000)
})

t.test('webhook_url must be an http(s) URL (400 in the error shape); events of an unknown session are 404, of a malformed id 400', async (t) => {
  const cluster = await startCluster(t, { relays: 0, env: { WEBHOOK_SECRET: webhookSecret(), WEBHOOK_ALLOWED_HOSTS: '127.0.0.1,hooks.example.com' } })
  const create = async (webhookUrl: unknown) => await fetch(`${cluster.controlPlane.url}/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: crypto.randomUUID(), webhook_url: webhookUrl }),
  })
  for (const bad of ['not a url', 'ftp://hooks.example.com/x', 'javascript:alert(1)', 'https://user:pw@hooks.example.com/', 'https://elsewhere.example.com/hooks']) {
    const res = await create(bad)
    t.equal(res.status, 400, `${bad}: 400`)
    t.match(await res.json(), { error: { code: 'invalid_webhook_url', message: String } })
  }
  const wrongType = await create(42)
  t.equal(wrongType.status, 400)
  t.match(await wrongType.json(), { error: { code: 'invalid_body' } })
  t.equal((await create('https://hooks.example.com/streams')).status, 201, 'an allowed https URL is taken')

  const revoked = await cluster.createSession()
  t.equal((await fetch(`${cluster.controlPlane.url}/sessions/${revoked.session_id}/operators/op-9`, { method: 'DELETE' })).status, 204)
  t.match((await events(cluster, revoked.session_id)).map((event) => [event.type, event.data]), [
    ['session.created', { client_id: revoked.client_id }], ['operator.revoked', { user_id: 'op-9' }],
  ], 'a revocation is in the event log')
  t.ok((await events(cluster, revoked.session_id)).every((event) => event.delivery.state === 'skipped' || event.delivery.state === 'pending'), 'with no receiver configured, nothing is delivered')

  const unknown = await fetch(`${cluster.controlPlane.url}/sessions/${crypto.randomUUID()}/events`)
  t.equal(unknown.status, 404)
  t.match(await unknown.json(), { error: { code: 'session_not_found' } })
  const malformed = await fetch(`${cluster.controlPlane.url}/sessions/nope/events`)
  t.equal(malformed.status, 400)
  t.match(await malformed.json(), { error: { code: 'invalid_id' } })
})

t.test('embedded database (api on PGlite): the same outbox delivers, and GET /sessions lists', async (t) => {
  const secret = webhookSecret()
  const receiver = await startReceiver(t)
  const service = await startService(t, ['api'], { DATA_DIR: tempDir('ss-webhooks-embedded-'), ...fast, WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret })
  const created = await (await fetch(`${service.url}/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: crypto.randomUUID() }),
  })).json() as { session_id: string, client_id: string, stream_key: string }
  const publisher = await connected(t, streamUrl({ base: `ws://127.0.0.1:${service.port}`, sessionId: created.session_id, userId: created.client_id, streamKey: created.stream_key }))
  await waitFor('session.active', () => receiver.accepted().length >= 2, 30_000)
  const listed = await (await fetch(`${service.url}/sessions?status=active`)).json() as { sessions: Array<{ session_id: string, publisher_online: boolean }> }
  t.match(listed.sessions, [{ session_id: created.session_id, publisher_online: true }])
  await publisher.close()
  // The relay marks the session waiting as the socket closes: before DELETE, or there is nothing to mark.
  await waitFor('session.waiting', () => receiver.accepted().length >= 3, 30_000)
  t.equal((await fetch(`${service.url}/sessions/${created.session_id}`, { method: 'DELETE' })).status, 204)
  await waitFor('four events', () => receiver.accepted().length >= 4, 30_000)
  t.same(receiver.accepted().map((hook) => hook.payload.type), ['session.created', 'session.active', 'session.waiting', 'session.finished'])
  const verifier = new Webhook(secret)
  t.ok(receiver.accepted().every((hook) => verifier.verify(hook.body, headersOf(hook)) !== undefined), 'signed')
})
