import { randomBytes, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import {
  connected, openSocket, primed, startService, tempDir, TEST_REDIS_URL, waitFor, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'

// `api`: the control plane and the relay in one process. With no REDIS_URL
// its backplane is in-process and, with no database variables, its database
// the embedded PGlite: the whole product from one command.

interface Created { session_id: string, client_id: string, stream_key: string, ws_url: string, status: string }

async function createSession (service: ServiceProcess): Promise<Created> {
  const res = await fetch(`${service.url}/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: randomUUID() }),
  })
  if (res.status !== 201) throw new Error(`POST /sessions: ${res.status} ${await res.text()}`)
  return await res.json() as Created
}

async function getJson (url: string): Promise<Record<string, unknown>> {
  return await (await fetch(url)).json() as Record<string, unknown>
}

/** The publisher's ws_url with its stream key; an operator's url: the same with its own user id. */
function publisherUrl (session: Created): string {
  return `${session.ws_url}?stream_key=${encodeURIComponent(session.stream_key)}`
}
function operatorUrl (session: Created, userId: string): string {
  return `${session.ws_url.slice(0, session.ws_url.lastIndexOf('/'))}/${encodeURIComponent(userId)}`
}

/** 100 mixed messages from the publisher reach every operator byte for byte, in order, with their type. */
async function relays100 (t: Test, publisher: TestSocket, operators: TestSocket[]): Promise<void> {
  await primed(publisher, operators)
  const sent: Array<{ data: Buffer, binary: boolean }> = []
  for (let i = 0; i < 100; i++) {
    const binary = i % 2 === 0
    const data = binary ? randomBytes(1 + Math.floor(Math.random() * 16 * 1024)) : Buffer.from(`text ${i} ✓ ${'é'.repeat(i % 20)}`)
    sent.push({ data, binary })
    await publisher.send(binary ? data : data.toString())
  }
  for (const [i, operator] of operators.entries()) {
    const received = await operator.waitForMessages(100, 10_000)
    const mismatch = received.findIndex((m, k) => m.binary !== sent[k]!.binary || !m.data.equals(sent[k]!.data))
    t.equal(mismatch, -1, `operator ${i + 1} got all 100 messages byte for byte, in order, with their type`)
    t.equal(operator.messages.length, 100, `operator ${i + 1}: and nothing else`)
  }
}

t.test('api alone (embedded database, in-process backplane): create, publish to two operators, presence, DELETE closes everything with 4410', async (t) => {
  const service = await startService(t, ['api'], { DATA_DIR: tempDir(), SHUTDOWN_DRAIN: '0ms' })
  const listening = await service.waitForLog((line) => line.msg === 'listening')
  t.equal(listening.backplane, 'memory', 'no REDIS_URL: the in-process backplane')

  const ready = await fetch(`${service.url}/ready`)
  t.equal(ready.status, 200, '/ready is 200')
  const readyBody = await ready.json() as { checks: Record<string, string> }
  t.equal(readyBody.checks.backplane, 'ok', '/ready has a backplane check')

  const session = await createSession(service)
  t.equal(new URL(session.ws_url).port, String(service.port), 'ws_url points at the same port')
  t.equal(new URL(session.ws_url).protocol, 'ws:')

  const operators = [
    await connected(t, operatorUrl(session, 'op-1')),
    await connected(t, operatorUrl(session, 'op-2')),
  ]
  const publisher = await connected(t, publisherUrl(session))
  await relays100(t, publisher, operators)

  await waitFor('the session to be active with its publisher online', async () => {
    const body = await getJson(`${service.url}/sessions/${session.session_id}`)
    return body.status === 'active' && body.publisher_online === true
  })
  t.match(await getJson(`${service.url}/sessions/${session.session_id}`), { status: 'active', publisher_online: true, operators_count: 2 })
  await waitFor('both operators online', async () => {
    const { operators: list } = await getJson(`${service.url}/sessions/${session.session_id}/operators`) as { operators: Array<{ online: boolean }> }
    return list.length === 2 && list.every((o) => o.online)
  })
  const { operators: list } = await getJson(`${service.url}/sessions/${session.session_id}/operators`) as { operators: Array<{ user_id: string, online: boolean }> }
  t.same(list.map((o) => [o.user_id, o.online]).sort(), [['op-1', true], ['op-2', true]], 'the operators list shows both online')

  const started = Date.now()
  t.equal((await fetch(`${service.url}/sessions/${session.session_id}`, { method: 'DELETE' })).status, 204)
  const closes = await Promise.all([publisher, ...operators].map(async (s) => await s.closed))
  const elapsed = Date.now() - started
  t.same(closes.map((c) => c.code), [4410, 4410, 4410], 'publisher and operators closed with 4410')
  t.ok(elapsed < 1000, `all closed ${elapsed} ms after DELETE`)
  t.equal((await openSocket(t, operatorUrl(session, 'op-1')).closed).code, 4410, 'and a finished session refuses new sockets')
  t.same(await service.stop('SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit 0')
})

t.test('api with REDIS_URL uses the Redis backplane', async (t) => {
  const service = await startService(t, ['api'], {
    DATA_DIR: tempDir(),
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: `sstest:${randomUUID().slice(0, 8)}:`,
    SHUTDOWN_DRAIN: '0ms',
  })
  const listening = await service.waitForLog((line) => line.msg === 'listening')
  t.equal(listening.backplane, 'redis', 'the listening line says redis')
  await waitFor('/ready 200', async () => (await fetch(`${service.url}/ready`)).status === 200)
  t.match(await getJson(`${service.url}/ready`), { checks: { backplane: 'ok' } }, '/ready reports the Redis backplane')

  const session = await createSession(service)
  const operators = [await connected(t, operatorUrl(session, 'op-1')), await connected(t, operatorUrl(session, 'op-2'))]
  const publisher = await connected(t, publisherUrl(session))
  await relays100(t, publisher, operators)
  t.same(await service.stop('SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit 0')
})
