import { randomUUID } from 'node:crypto'
import t from 'tap'
import { SignJWT, UnsecuredJWT } from 'jose'
import { CloseCode, type CreatedSession } from '@streaming-service/protocol'
import { connected, openSocket, primed, startCluster, type Cluster, type ServiceProcess, type TestSocket } from '@streaming-service/testing'

// SPEC §9 on a control plane and two relays in token mode: API keys for
// REST, operator tokens verified on every relay, revocation everywhere
// within a second, tokens that die with their session, and no secret in any
// log line of the whole run.

const API_KEYS = [`api-key-one-${randomUUID()}`, `api-key-two-${randomUUID()}`]
const SECRET = `jwt-secret-${randomUUID()}`
let cluster: Cluster
t.before(async () => {
  cluster = await startCluster(t, { relays: 2, env: { AUTH_MODE: 'token', API_KEYS: API_KEYS.join(','), AUTH_JWT_SECRET: SECRET } })
})

const rest = async (path: string, init: RequestInit & { key?: string | null } = {}): Promise<Response> => {
  const { key = API_KEYS[0], ...rest } = init
  return await fetch(`${cluster.controlPlane.url}${path}`, {
    ...rest,
    headers: {
      ...(rest.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...(rest.headers as Record<string, string> | undefined),
    },
  })
}

async function mint (sessionId: string, userId: string, ttl?: string): Promise<{ token: string, ws_url: string, expires_at: string }> {
  const res = await rest(`/sessions/${sessionId}/tokens`, { method: 'POST', body: JSON.stringify({ user_id: userId, ...(ttl === undefined ? {} : { ttl }) }) })
  if (res.status !== 201) throw new Error(`mint: ${res.status} ${await res.text()}`)
  return await res.json() as { token: string, ws_url: string, expires_at: string }
}

/** The token's ws_url, pointed at `relay` (the control plane derives it from its own address). */
const onRelay = (wsUrl: string, relay: ServiceProcess): string => wsUrl.replace(/^ws:\/\/[^/]+/, `ws://127.0.0.1:${relay.port}`)
const now = () => Math.floor(Date.now() / 1000)
const sign = async (claims: Record<string, unknown>, secret = SECRET) =>
  await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret))

/** The publisher presents its stream key as a bearer credential this time (SPEC §9: query or header). */
async function publishTo (relay: ServiceProcess, session: CreatedSession): Promise<TestSocket> {
  return await connected(t, cluster.wsUrl(relay, session.session_id, session.client_id), bearer(session.stream_key))
}

const bearer = (credential: string) => ({ headers: { authorization: `Bearer ${credential}` } })

t.test('REST: no key or a wrong key is 401 in the error shape with WWW-Authenticate; every key of API_KEYS works; probes and docs stay open', async (t) => {
  for (const key of [null, 'wrong-key-of-at-least-32-characters-x', API_KEYS[0]!.slice(0, -1)]) {
    const res = await rest('/sessions', { method: 'POST', body: JSON.stringify({ client_id: randomUUID() }), key })
    t.equal(res.status, 401, `key ${key === null ? 'missing' : 'wrong'}`)
    t.match(res.headers.get('www-authenticate'), /^Bearer/)
    t.match(await res.json(), { error: { code: 'unauthorized', message: String } })
  }
  for (const key of API_KEYS) {
    const res = await rest('/sessions', { method: 'POST', body: JSON.stringify({ client_id: randomUUID() }), key })
    t.equal(res.status, 201, 'a configured key creates a session')
  }
  t.equal((await rest(`/sessions/${randomUUID()}`, { key: null })).status, 401, 'GET needs a key too')
  for (const path of ['/health', '/ready', '/metrics', '/openapi.json', '/docs/']) {
    t.equal((await fetch(`${cluster.controlPlane.url}${path}`)).status, 200, `${path} is open`)
  }
  t.equal((await fetch(`${cluster.relays[0]!.url}/`)).status, 200, 'the console\'s page is open')
})

t.test('operators: a minted token\'s ws_url gets the stream on either relay; a token the backend signs itself works too', async (t) => {
  const session = await cluster.createSession()
  const [a, b] = cluster.relays as [ServiceProcess, ServiceProcess]
  const minted = await mint(session.session_id, 'op-minted', '10m')
  t.match(minted.ws_url, new RegExp(`/ws/stream/${session.session_id}/op-minted\\?token=`))
  t.ok(Math.abs(Date.parse(minted.expires_at) - Date.now() - 600_000) < 5000, 'expires in the ttl')
  const own = await sign({ sid: session.session_id, sub: 'op-own', role: 'operator', iat: now(), exp: now() + 300 })
  const operators = [
    await connected(t, onRelay(minted.ws_url, a)),
    await connected(t, onRelay(minted.ws_url, b)),
    await connected(t, cluster.wsUrl(b, session.session_id, 'op-own'), bearer(own)),
  ]
  const publisher = await publishTo(a, session)
  await primed(publisher, operators)
  await publisher.send('frame 1')
  for (const [i, operator] of operators.entries()) {
    t.same((await operator.waitForMessages(1)).map((message) => message.data.toString()), ['frame 1'], `operator ${i} got the stream`)
  }
})

t.test('every refusal of a token: 4401 when missing, malformed, forged or expired; 4403 when valid for something else', async (t) => {
  const session = await cluster.createSession()
  const other = await cluster.createSession()
  const relay = cluster.relays[1]!
  const claims = { sid: session.session_id, sub: 'op-1', role: 'operator', iat: now(), exp: now() + 300 }
  const { exp: _exp, ...noExp } = claims
  const cases: Array<[string, string | undefined, number]> = [
    ['no token', undefined, CloseCode.unauthorized],
    ['garbage', 'garbage', CloseCode.unauthorized],
    ['expired', await sign({ ...claims, iat: now() - 600, exp: now() - 300 }), CloseCode.unauthorized],
    ['wrong secret', await sign(claims, `another-secret-${randomUUID()}`), CloseCode.unauthorized],
    ['alg none', new UnsecuredJWT(claims).encode(), CloseCode.unauthorized],
    ['no exp', await sign(noExp), CloseCode.unauthorized],
    ['exp beyond 24 h', await sign({ ...claims, exp: now() + 48 * 3600 }), CloseCode.unauthorized],
    ['another session', await sign({ ...claims, sid: other.session_id }), CloseCode.forbidden],
    ['another user', await sign({ ...claims, sub: 'op-2' }), CloseCode.forbidden],
    ['publisher role', await sign({ ...claims, role: 'publisher' }), CloseCode.forbidden],
  ]
  for (const [what, token, code] of cases) {
    const url = cluster.wsUrl(relay, session.session_id, 'op-1') + (token === undefined ? '' : `?token=${encodeURIComponent(token)}`)
    t.equal((await openSocket(t, url).closed).code, code, `${what}: ${code}`)
  }
  const operators = await (await rest(`/sessions/${session.session_id}/operators`)).json() as { operators: unknown[] }
  t.same(operators.operators, [], 'no refused connection took an operator slot')
})

t.test('revocation: the operator\'s sockets on both relays close with 4403 within 1 s; its old tokens are refused, also on a relay started later; a new one works', async (t) => {
  const session = await cluster.createSession()
  const [a, b] = cluster.relays as [ServiceProcess, ServiceProcess]
  const old = await mint(session.session_id, 'op-x')
  const sockets = [await connected(t, onRelay(old.ws_url, a)), await connected(t, onRelay(old.ws_url, b))]
  const bystander = await connected(t, onRelay((await mint(session.session_id, 'op-y')).ws_url, a))

  const started = Date.now()
  const res = await rest(`/sessions/${session.session_id}/operators/op-x`, { method: 'DELETE' })
  t.equal(res.status, 204)
  const closes = await Promise.all(sockets.map(async (socket) => ({ ...(await socket.closed), after: Date.now() - started })))
  for (const [i, close] of closes.entries()) {
    t.equal(close.code, CloseCode.forbidden, `relay ${i === 0 ? 'A' : 'B'}: 4403`)
    t.ok(close.after < 1000, `relay ${i === 0 ? 'A' : 'B'}: closed ${close.after} ms after the revocation`)
  }
  t.equal(bystander.socket.readyState, bystander.socket.OPEN, 'other operators stay')
  const list = await (await rest(`/sessions/${session.session_id}/operators`)).json() as { operators: Array<{ user_id: string }> }
  t.same(list.operators.map((operator) => operator.user_id), ['op-y'], 'it left the operator list')

  t.equal((await openSocket(t, onRelay(old.ws_url, a)).closed).code, CloseCode.forbidden, 'its old token is refused')
  const later = await cluster.addRelay()
  t.equal((await openSocket(t, onRelay(old.ws_url, later)).closed).code, CloseCode.forbidden, 'also on a relay started after the revocation')
  const fresh = await mint(session.session_id, 'op-x')
  const back = await connected(t, onRelay(fresh.ws_url, later))
  t.equal(back.socket.readyState, back.socket.OPEN, 'a token minted after the revocation works')
})

t.test('a finished session: its tokens get 4410, minting is 409 session_finished', async (t) => {
  const session = await cluster.createSession()
  const minted = await mint(session.session_id, 'op-1')
  t.equal((await rest(`/sessions/${session.session_id}`, { method: 'DELETE' })).status, 204)
  t.equal((await openSocket(t, onRelay(minted.ws_url, cluster.relays[0]!)).closed).code, CloseCode.finished)
  const res = await rest(`/sessions/${session.session_id}/tokens`, { method: 'POST', body: JSON.stringify({ user_id: 'op-2' }) })
  t.equal(res.status, 409)
  t.match(await res.json(), { error: { code: 'session_finished', message: String } })
  const unknown = await rest(`/sessions/${randomUUID()}/tokens`, { method: 'POST', body: JSON.stringify({ user_id: 'op-2' }) })
  t.equal(unknown.status, 404)
  const badTtl = await rest(`/sessions/${session.session_id}/tokens`, { method: 'POST', body: JSON.stringify({ user_id: 'op-2', ttl: '25h' }) })
  t.equal(badTtl.status, 400)
})

t.test('no secret reaches a log line of the run: API keys, the JWT secret, stream keys, tokens', async (t) => {
  const session = await cluster.createSession()
  const minted = await mint(session.session_id, 'op-logged')
  const operator = await connected(t, onRelay(minted.ws_url, cluster.relays[0]!))
  await operator.close()
  await rest(`/sessions/${session.session_id}?stream_key=${session.stream_key}&token=${minted.token}`)
  const lines = [cluster.controlPlane, ...cluster.relays].flatMap((service) => service.logs.map((line) => JSON.stringify(line)))
  t.ok(lines.length > 50, `${lines.length} log lines`)
  for (const [what, secret] of [['API key', API_KEYS[0]!], ['second API key', API_KEYS[1]!], ['JWT secret', SECRET], ['stream key', session.stream_key], ['token', minted.token]] as const) {
    t.notOk(lines.some((line) => line.includes(secret)), `no ${what} in any line`)
  }
})
