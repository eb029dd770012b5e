import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { CloseCode, streamUrl } from '@streaming-service/protocol'
import { createTestDatabase, startService, waitFor } from '@streaming-service/testing'
import type { CloseInfo, ConnectionOptions } from '../src/connection.js'
import { Publisher } from '../src/publisher.js'
import { ApiError, SessionsApi } from '../src/sessions-api.js'
import { Viewer } from '../src/viewer.js'

// The SDK in AUTH_MODE=token against a real service (`api`): the REST helper
// with an API key, operator tokens and stream keys in the query or in a
// header, a token source called on every attempt, and no retry after 4401/4403.

const API_KEY = `client-test-key-${randomUUID()}`
const db = await createTestDatabase(t, 'client_auth')
const service = await startService(t, ['api'], { ...db.env, AUTH_MODE: 'token', API_KEYS: API_KEY, AUTH_JWT_SECRET: `client-test-secret-${randomUUID()}` })
const api = new SessionsApi({ base: `${service.url}/`, apiKey: API_KEY })
const base = `ws://127.0.0.1:${service.port}`

const nodeOptions = (url: string): ConnectionOptions => ({ url, WebSocket, backoff: { initialMs: 100, maxMs: 400 } })

/** Records every close; stops the client at teardown. */
function track (t: Test, client: Viewer | Publisher): CloseInfo[] {
  const closes: CloseInfo[] = []
  client.connection.on('close', (info) => closes.push(info))
  t.teardown(() => client.stop())
  return closes
}

async function refusal (promise: Promise<unknown>): Promise<ApiError> {
  const err = await promise.then(() => undefined, (err: unknown) => err)
  if (!(err instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(err)}`)
  return err
}

t.test('SessionsApi sends the API key; without it every call is 401 unauthorized', async (t) => {
  const anonymous = new SessionsApi({ base: service.url })
  t.match(await refusal(anonymous.create(randomUUID())), { status: 401, code: 'unauthorized' })
  t.match(await refusal(anonymous.list()), { status: 401, code: 'unauthorized' }, 'GET /sessions needs the key')
  t.match(await refusal(anonymous.events(randomUUID())), { status: 401, code: 'unauthorized' }, 'GET /sessions/:id/events needs the key')
  let key: string | undefined = 'not-the-key-but-long-enough-to-be-one'
  const rotating = new SessionsApi({ base: service.url, apiKey: () => key })
  t.match(await refusal(rotating.get(randomUUID())), { status: 401, code: 'unauthorized' }, 'a wrong key')
  key = API_KEY
  t.match(await refusal(rotating.get(randomUUID())), { status: 404, code: 'session_not_found' }, 'the key function is asked on every request')

  const clientId = randomUUID()
  const session = await api.create(clientId)
  t.match(session, { client_id: clientId, status: 'waiting', stream_key: String })
  t.match(await api.get(session.session_id), { session_id: session.session_id, operators_count: 0 })
  t.same(await api.operators(session.session_id), [])
  const minted = await api.mintToken(session.session_id, 'op-rest', { ttl: '10m' })
  t.match(minted.ws_url, `/ws/stream/${session.session_id}/op-rest?token=`)
  t.ok(Math.abs(Date.parse(minted.expires_at) - Date.now() - 600_000) < 5000, 'expires in the ttl')
  await api.revokeOperator(session.session_id, 'op-rest')
  await api.delete(session.session_id)
  t.match(await refusal(api.mintToken(session.session_id, 'op-rest')), { status: 409, code: 'session_finished' })
  const page = await api.list({ client_id: clientId, limit: 10 })
  t.same(page.sessions.map((listed) => [listed.session_id, listed.status]), [[session.session_id, 'finished']], 'list: the client\'s session')
  t.equal(page.next_cursor, null)
  t.same((await api.events(session.session_id)).map((event) => event.type), ['session.created', 'operator.revoked', 'session.finished'], 'events: in order')
})

t.test('a token and a stream key in the query or in an Authorization header', async (t) => {
  const session = await api.create(randomUUID())
  const viewers = [
    new Viewer({ ...nodeOptions(streamUrl({ base, sessionId: session.session_id, userId: 'op-query' })), token: (await api.mintToken(session.session_id, 'op-query')).token }),
    new Viewer({ ...nodeOptions(streamUrl({ base, sessionId: session.session_id, userId: 'op-header' })), token: api.tokenSource(session.session_id, 'op-header'), credentialIn: 'header' }),
  ]
  const received: string[][] = viewers.map(() => [])
  viewers.forEach((viewer, i) => {
    track(t, viewer)
    viewer.connection.on('message', ({ data }) => { if (typeof data === 'string') received[i]!.push(data) })
    viewer.start()
  })
  await waitFor('both viewers open', () => viewers.every((viewer) => viewer.stats.state === 'open'))

  const publisher = new Publisher({
    ...nodeOptions(streamUrl({ base, sessionId: session.session_id, userId: session.client_id })),
    streamKey: session.stream_key,
    credentialIn: 'header',
    source: (sink) => {
      const timer = setInterval(() => sink.send('hello'), 20)
      return { stop: () => clearInterval(timer) }
    },
  })
  track(t, publisher)
  publisher.start()
  await waitFor('messages at both viewers', () => received.every((messages) => messages.includes('hello')))
  t.equal((await api.get(session.session_id)).status, 'active', 'the stream key in a header admitted the publisher')
  // Both viewers joined at once: the list's order is theirs, not the test's.
  t.same((await api.operators(session.session_id)).map((operator) => operator.user_id).sort(), ['op-header', 'op-query'])
})

t.test('never retries a refused credential: missing token 4401, another user\'s token 4403, revoked while watching 4403', async (t) => {
  const session = await api.create(randomUUID())
  const url = (userId: string) => streamUrl({ base, sessionId: session.session_id, userId })
  const othersToken = (await api.mintToken(session.session_id, 'op-other')).token
  const cases = [
    { code: CloseCode.unauthorized, viewer: new Viewer(nodeOptions(url('op-none'))) },
    { code: CloseCode.forbidden, viewer: new Viewer({ ...nodeOptions(url('op-mine')), token: othersToken }) },
  ]
  for (const { code, viewer } of cases) {
    const closes = track(t, viewer)
    viewer.start()
    await waitFor(`the viewer to stop on ${code}`, () => viewer.stats.state === 'stopped')
    t.match(closes, [{ code, action: 'stop', retryInMs: null }], `${code}: one close, no retry`)
  }

  const watching = new Viewer({ ...nodeOptions(url('op-revoked')), token: api.tokenSource(session.session_id, 'op-revoked') })
  const closes = track(t, watching)
  watching.start()
  await waitFor('the viewer open', () => watching.stats.state === 'open')
  await api.revokeOperator(session.session_id, 'op-revoked')
  await waitFor('the revoked viewer stopped', () => watching.stats.state === 'stopped')
  t.match(closes, [{ code: CloseCode.forbidden, action: 'stop', retryInMs: null }], 'closed with 4403 and not retried, though its token source could mint again')
  t.equal(watching.stats.opens, 1)
})

t.test('a token source is asked on every attempt; its failure is a failed attempt that backs off', async (t) => {
  const session = await api.create(randomUUID())
  const mint = api.tokenSource(session.session_id, 'op-fresh', { ttl: '1m' })
  let calls = 0
  const viewer = new Viewer({
    ...nodeOptions(streamUrl({ base, sessionId: session.session_id, userId: 'op-fresh' })),
    token: async () => {
      if (++calls === 1) throw new Error('token service unavailable')
      return await mint()
    },
  })
  const closes = track(t, viewer)
  viewer.start()
  await waitFor('the viewer open', () => viewer.stats.state === 'open')
  t.match(closes, [{ code: CloseCode.abnormal, reason: 'connection target: token service unavailable', action: 'backoff' }])
  t.equal(calls, 2, 'asked again for the retry')

  viewer.reconnect()
  await waitFor('the viewer open again', () => viewer.stats.state === 'open' && viewer.stats.opens === 2)
  t.equal(calls, 3, 'a reconnect asks for a fresh token')
})
