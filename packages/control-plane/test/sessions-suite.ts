import { createHash, randomUUID } from 'node:crypto'
import type { TAP, Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { eventually, unreachableDatabase, type MakeApp, type TestApp } from './helper.js'

/**
 * SPEC §3 against one database backend. Each file that calls this opens its
 * own database (PostgreSQL or the embedded PGlite) and shares it between
 * these tests; every test builds its own app.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const API_CODE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/
const SESSION_FIELDS = [
  'client_id', 'created_at', 'finished_at', 'operators_count', 'publisher_online', 'session_id', 'started_at', 'status', 'ws_url',
]
const CREATED_FIELDS = ['client_id', 'created_at', 'session_id', 'status', 'stream_key', 'ws_url']

interface Created {
  session_id: string
  client_id: string
  stream_key: string
  ws_url: string
  status: string
  created_at: string
}

type Headers = Record<string, string>

async function postJson (app: TestApp, payload: string, headers: Headers = {}): Promise<LightMyRequestResponse> {
  return await app.inject({ method: 'POST', url: '/sessions', headers: { 'content-type': 'application/json', ...headers }, payload })
}

async function createSession (t: Test, app: TestApp, clientId: string = randomUUID(), headers: Headers = {}): Promise<Created> {
  const res = await postJson(app, JSON.stringify({ client_id: clientId }), headers)
  t.equal(res.statusCode, 201, 'POST /sessions is 201')
  return res.json<Created>()
}

async function getSession (t: Test, app: TestApp, id: string, headers: Headers = {}): Promise<Record<string, unknown>> {
  const res = await app.inject({ method: 'GET', url: `/sessions/${id}`, headers })
  t.equal(res.statusCode, 200, `GET /sessions/${id} is 200`)
  return res.json<Record<string, unknown>>()
}

/**
 * The SPEC §3 error shape: exactly `{error: {code, message}}` (plus `extra`
 * top-level keys), a non-empty message, JSON, and a request id. One
 * assertion per response, whose diff shows everything that differs.
 */
function assertError (t: Test, res: LightMyRequestResponse, status: number, code: string, extra: string[] = [], label = ''): void {
  let body: Record<string, unknown> | undefined
  try {
    body = res.json<Record<string, unknown>>()
  } catch {}
  const error = body?.error as Record<string, unknown> | undefined
  const message = error?.message
  t.same({
    status: res.statusCode,
    json: /^application\/json/.test(String(res.headers['content-type'])),
    requestId: typeof res.headers['x-request-id'] === 'string' && res.headers['x-request-id'] !== '',
    keys: Object.keys(body ?? {}).sort(),
    errorKeys: Object.keys(error ?? {}).sort(),
    code: error?.code,
    snakeCase: API_CODE.test(String(error?.code)),
    message: typeof message === 'string' && message.trim() !== '' ? 'non-empty' : message,
  }, {
    status,
    json: true,
    requestId: true,
    keys: ['error', ...extra].sort(),
    errorKeys: ['code', 'message'],
    code,
    snakeCase: true,
    message: 'non-empty',
  }, `${res.raw.req.method ?? ''} ${res.raw.req.url ?? ''}${label === '' ? '' : ` (${label})`} is ${status} ${code} in the error shape`)
}

function assertIso (t: Test, value: unknown, what: string): void {
  t.match(value, ISO, `${what} is an ISO timestamp`)
  t.equal(new Date(String(value)).toISOString(), value, `${what} round-trips through Date`)
}

interface Sample { name: string, labels: Record<string, string>, value: number }

/**
 * The Prometheus text format (0.0.4): every line is a `# HELP`/`# TYPE`
 * comment or `name{label="value",...} value [timestamp]`. Throws on any
 * other line.
 */
function parsePrometheus (text: string): { samples: Sample[], types: Map<string, string> } {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  for (const [index, line] of lines.entries()) {
    const fail = (why: string) => new Error(`metrics line ${index + 1} ${why}: ${JSON.stringify(line)}`)
    if (line === '') continue
    if (line.startsWith('#')) {
      const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/.exec(line)
      if (comment === null) throw fail('is neither # HELP nor # TYPE')
      if (comment[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(comment[3] ?? '')) throw fail('has an unknown type')
        types.set(comment[2]!, comment[3]!)
      }
      continue
    }
    const metric = name.exec(line)
    if (metric === null) throw fail('does not start with a metric name')
    let rest = line.slice(metric[0].length)
    const labels: Record<string, string> = {}
    if (rest.startsWith('{')) {
      rest = rest.slice(1)
      while (!rest.startsWith('}')) {
        const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest)
        if (label === null) throw fail('has a malformed label')
        labels[label[1]!] = label[2]!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1')
        rest = rest.slice(label[0].length)
        if (label[3] === '' && !rest.startsWith('}')) throw fail('has labels without a comma')
      }
      rest = rest.slice(1)
    }
    // Values are what Go's ParseFloat reads: NaN and Inf in any case
    // (prom-client writes an empty summary's NaN as "Nan").
    const value = /^ (nan|[+-]?inf|[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)(?: -?\d+)?$/i.exec(rest)
    if (value === null) throw fail('has no valid value')
    const text = value[1]!.toLowerCase()
    const number = text === 'nan' ? NaN : text.endsWith('inf') ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text)
    samples.push({ name: metric[0], labels, value: number })
  }
  return { samples, types }
}

export function sessionsSuite (tap: TAP, makeApp: MakeApp): void {
  // POST /sessions

  tap.test('POST /sessions creates a waiting session and returns its stream key', async (t) => {
    const app = await makeApp(t)
    const clientId = randomUUID()
    const before = Date.now()
    const res = await postJson(app, JSON.stringify({ client_id: clientId }))
    t.equal(res.statusCode, 201)
    t.match(String(res.headers['content-type']), /^application\/json/)
    const body = res.json<Created>()
    t.same(Object.keys(body).sort(), CREATED_FIELDS, 'exactly the SPEC fields')
    t.match(body.session_id, UUID, 'session_id is a uuid')
    t.equal(body.client_id, clientId)
    t.equal(body.status, 'waiting')
    t.match(body.stream_key, /^[A-Za-z0-9_-]+$/, 'stream key is URL-safe')
    t.ok(body.stream_key.length >= 22, 'stream key carries at least 128 bits')
    t.equal(body.ws_url, `ws://localhost:80/ws/stream/${body.session_id}/${clientId}`)
    assertIso(t, body.created_at, 'created_at')
    t.ok(Math.abs(Date.parse(body.created_at) - before) < 60_000, 'created_at is now')
  })

  tap.test('stream keys differ between sessions and are stored only as their sha256', async (t) => {
    const app = await makeApp(t)
    const clientId = randomUUID()
    const first = await createSession(t, app, clientId)
    const second = await createSession(t, app, clientId)
    t.not(first.session_id, second.session_id, 'two sessions of one client')
    t.not(first.stream_key, second.stream_key, 'each session has its own key')
    for (const session of [first, second]) {
      const [row] = await app.sql<Array<{ stream_key_hash: Buffer, row: string }>>`
        select s.stream_key_hash, row_to_json(s)::text as row from streaming_sessions s where s.id = ${session.session_id}`
      t.ok(row !== undefined, 'the session is stored')
      t.ok(Buffer.isBuffer(row!.stream_key_hash), 'the hash is bytes')
      t.not(row!.stream_key_hash.toString('utf8'), session.stream_key, 'the key itself is not stored')
      t.same(row!.stream_key_hash, createHash('sha256').update(session.stream_key).digest(), 'the stored hash is sha256(key)')
      t.notOk(row!.row.includes(session.stream_key), 'no column holds the key')
    }
  })

  tap.test('POST /sessions accepts an uppercase client_id and a JSON charset parameter', async (t) => {
    const app = await makeApp(t)
    const clientId = randomUUID()
    const res = await postJson(app, JSON.stringify({ client_id: clientId.toUpperCase() }), { 'content-type': 'application/json; charset=utf-8' })
    t.equal(res.statusCode, 201)
    const body = res.json<Created>()
    t.equal(body.client_id, clientId, 'stored in canonical lower case')
    t.ok(body.ws_url.endsWith(`/${body.session_id}/${clientId}`))
  })

  tap.test('POST /sessions without client_id is 400 invalid_body', async (t) => {
    const app = await makeApp(t)
    assertError(t, await postJson(app, '{}'), 400, 'invalid_body')
    assertError(t, await postJson(app, JSON.stringify({ clientId: randomUUID() })), 400, 'invalid_body')
    assertError(t, await app.inject({ method: 'POST', url: '/sessions' }), 400, 'invalid_body')
  })

  tap.test('POST /sessions with a client_id that is not a uuid is 400 invalid_body', async (t) => {
    const app = await makeApp(t)
    const id = randomUUID()
    const values: unknown[] = [
      'abc', '', 'not-a-uuid', id.slice(1), `${id}0`, ` ${id}`, id.replace(/-/g, ''), `${id.slice(0, -1)}g`, `urn:uuid:${id}`,
      `{${id}}`, 123, 0, true, null, {}, { id },
    ]
    for (const value of values) {
      const res = await postJson(app, JSON.stringify({ client_id: value }))
      assertError(t, res, 400, 'invalid_body', [], `client_id ${JSON.stringify(value)}`)
    }
    const [{ count }] = await app.sql<[{ count: number }]>`select count(*)::int as count from streaming_sessions where client_id = ${id}`
    t.equal(count, 0, 'nothing was created')
  })

  tap.test('POST /sessions with a JSON body that is not an object is 400 invalid_body', async (t) => {
    const app = await makeApp(t)
    for (const payload of ['[]', `["${randomUUID()}"]`, '42', 'null', '"text"', 'true']) {
      assertError(t, await postJson(app, payload), 400, 'invalid_body', [], `body ${payload}`)
    }
  })

  tap.test('POST /sessions validates the body as sent: no coercion, no unknown properties', async (t) => {
    const app = await makeApp(t)
    const id = randomUUID()
    assertError(t, await postJson(app, JSON.stringify({ client_id: [id] })), 400, 'invalid_body', [], 'a one-element array is not a uuid')
    assertError(t, await postJson(app, JSON.stringify({ client_id: id, extra: 1 })), 400, 'invalid_body', [], 'unknown properties are refused')
    const [{ count }] = await app.sql<[{ count: number }]>`select count(*)::int as count from streaming_sessions where client_id = ${id}`
    t.equal(count, 0, 'nothing was created')
  })

  tap.test('POST /sessions with malformed JSON is 400 invalid_json', async (t) => {
    const app = await makeApp(t)
    for (const payload of ['{"client_id":', '{client_id: 1}', "{'client_id': 'x'}", 'nope', '{"client_id": "x"}}']) {
      assertError(t, await postJson(app, payload), 400, 'invalid_json', [], `body ${payload}`)
    }
  })

  tap.test('POST /sessions with content-type JSON and an empty body is 400', async (t) => {
    const app = await makeApp(t)
    assertError(t, await postJson(app, ''), 400, 'invalid_json')
  })

  tap.test('POST /sessions with a content type other than JSON is 415 unsupported_media_type', async (t) => {
    const app = await makeApp(t)
    const clientId = randomUUID()
    const bodies: Array<[string, string]> = [
      ['text/plain', JSON.stringify({ client_id: clientId })],
      ['text/plain; charset=utf-8', JSON.stringify({ client_id: clientId })],
      ['application/x-www-form-urlencoded', `client_id=${clientId}`],
      ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="client_id"\r\n\r\n${clientId}\r\n--x--\r\n`],
      ['application/xml', `<client_id>${clientId}</client_id>`],
      ['application/octet-stream', JSON.stringify({ client_id: clientId })],
    ]
    for (const [contentType, payload] of bodies) {
      assertError(t, await postJson(app, payload, { 'content-type': contentType }), 415, 'unsupported_media_type', [], contentType)
    }
    // A body without any content type is not JSON either.
    const untyped = await app.inject({ method: 'POST', url: '/sessions', payload: JSON.stringify({ client_id: clientId }) })
    assertError(t, untyped, 415, 'unsupported_media_type', [], 'no content type')
    const [{ count }] = await app.sql<[{ count: number }]>`select count(*)::int as count from streaming_sessions where client_id = ${clientId}`
    t.equal(count, 0, 'nothing was created')
  })

  tap.test('POST /sessions with a body over 64 KB is 413 payload_too_large', async (t) => {
    const app = await makeApp(t)
    const clientId = randomUUID()
    const valid = JSON.stringify({ client_id: clientId })
    // Insignificant white space keeps it valid JSON: only the size differs.
    const under = await postJson(app, valid + ' '.repeat(64 * 1024 - Buffer.byteLength(valid)))
    t.equal(under.statusCode, 201, 'a 64 KB body is accepted')
    assertError(t, await postJson(app, valid + ' '.repeat(64 * 1024 - Buffer.byteLength(valid) + 1)), 413, 'payload_too_large')
    assertError(t, await postJson(app, JSON.stringify({ client_id: clientId, padding: 'x'.repeat(200 * 1024) })), 413, 'payload_too_large')
  })

  // ws_url

  tap.test('ws_url is derived from the Host header', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app, randomUUID(), { host: 'stream.example.test:8443' })
    t.equal(created.ws_url, `ws://stream.example.test:8443/ws/stream/${created.session_id}/${created.client_id}`)
    const got = await getSession(t, app, created.session_id, { host: 'other.example.test' })
    t.equal(got.ws_url, `ws://other.example.test/ws/stream/${created.session_id}/${created.client_id}`, 'GET derives it from its own request')
  })

  // inject's peer is 127.0.0.1: naming it in TRUST_PROXY makes it the load balancer.
  const behindProxy = { env: { TRUST_PROXY: '127.0.0.1' } }

  tap.test('X-Forwarded-Proto https from a trusted proxy makes ws_url wss', async (t) => {
    const app = await makeApp(t, behindProxy)
    const created = await createSession(t, app, randomUUID(), { host: 'lb.example.test', 'x-forwarded-proto': 'https' })
    t.equal(created.ws_url, `wss://lb.example.test/ws/stream/${created.session_id}/${created.client_id}`)
    const plain = await createSession(t, app, randomUUID(), { host: 'lb.example.test', 'x-forwarded-proto': 'http' })
    t.match(plain.ws_url, /^ws:\/\/lb\.example\.test\//, 'http stays ws')
    const got = await getSession(t, app, created.session_id, { host: 'lb.example.test', 'x-forwarded-proto': 'https' })
    t.equal(got.ws_url, created.ws_url)
  })

  tap.test('X-Forwarded-Host from a trusted proxy wins over Host', async (t) => {
    const app = await makeApp(t, behindProxy)
    const created = await createSession(t, app, randomUUID(), { host: 'internal:8090', 'x-forwarded-host': 'public.example.test' })
    t.equal(created.ws_url, `ws://public.example.test/ws/stream/${created.session_id}/${created.client_id}`)
  })

  tap.test('comma-separated forwarded headers use the value the trusted proxy added (the last)', async (t) => {
    // A proxy that appends keeps what the client sent in front: the first
    // value is the client's choice, the last one the proxy's.
    const app = await makeApp(t, behindProxy)
    const created = await createSession(t, app, randomUUID(), {
      host: 'internal:8090',
      'x-forwarded-proto': 'http, https',
      'x-forwarded-host': 'evil.example, edge.example.test',
    })
    t.equal(created.ws_url, `wss://edge.example.test/ws/stream/${created.session_id}/${created.client_id}`)
  })

  tap.test('forwarded headers from a peer not in TRUST_PROXY are ignored: ws_url keeps the Host', async (t) => {
    const forged = { host: 'stream.example.test:8090', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' }
    const expected = (created: Created) => `ws://stream.example.test:8090/ws/stream/${created.session_id}/${created.client_id}`
    const byDefault = await makeApp(t)
    const created = await createSession(t, byDefault, randomUUID(), forged)
    t.equal(created.ws_url, expected(created), 'TRUST_PROXY unset: nobody is trusted')
    t.equal((await getSession(t, byDefault, created.session_id, forged)).ws_url, expected(created), 'GET too')

    const elsewhere = await makeApp(t, { env: { TRUST_PROXY: '10.0.0.0/8, 192.0.2.7' } })
    const other = await createSession(t, elsewhere, randomUUID(), forged)
    t.equal(other.ws_url, expected(other), 'a peer outside the named proxies')
  })

  tap.test('TRUST_PROXY: CIDR ranges match the peer address; a hop count trusts the nearest hop', async (t) => {
    const forged = { host: 'internal:8090', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'edge.example.test' }
    const inject = async (app: TestApp, remoteAddress: string) => await app.inject({
      method: 'POST', url: '/sessions', remoteAddress, headers: { 'content-type': 'application/json', ...forged }, payload: JSON.stringify({ client_id: randomUUID() }),
    })
    const ranges = await makeApp(t, { env: { TRUST_PROXY: '10.0.0.0/8,2001:db8::/32' } })
    t.match((await inject(ranges, '10.1.2.3')).json(), { ws_url: /^wss:\/\/edge\.example\.test\// }, 'an IPv4 peer in range')
    t.match((await inject(ranges, '2001:db8::5')).json(), { ws_url: /^wss:\/\/edge\.example\.test\// }, 'an IPv6 peer in range')
    t.match((await inject(ranges, '11.1.2.3')).json(), { ws_url: /^ws:\/\/internal:8090\// }, 'a peer out of range')
    const hops = await makeApp(t, { env: { TRUST_PROXY: '1' } })
    t.match((await inject(hops, '198.51.100.1')).json(), { ws_url: /^wss:\/\/edge\.example\.test\// }, 'one hop: whoever connects')
  })

  tap.test('WS_BASE_URL wins over forwarded headers and Host', async (t) => {
    const app = await makeApp(t, { env: { WS_BASE_URL: 'wss://stream.example.com/' } })
    const headers = { host: 'internal:8090', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'edge.example.test' }
    const created = await createSession(t, app, randomUUID(), headers)
    const expected = `wss://stream.example.com/ws/stream/${created.session_id}/${created.client_id}`
    t.equal(created.ws_url, expected, 'the trailing slash does not double')
    const got = await getSession(t, app, created.session_id, headers)
    t.equal(got.ws_url, expected)
  })

  // GET /sessions/:id

  tap.test('GET /sessions/:id returns exactly the SPEC fields and never the stream key', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    const res = await app.inject({ method: 'GET', url: `/sessions/${created.session_id}` })
    t.equal(res.statusCode, 200)
    t.match(String(res.headers['content-type']), /^application\/json/)
    const body = res.json<Record<string, unknown>>()
    t.same(Object.keys(body).sort(), SESSION_FIELDS, 'exactly the SPEC fields')
    t.same(body, {
      session_id: created.session_id,
      client_id: created.client_id,
      status: 'waiting',
      ws_url: created.ws_url,
      created_at: created.created_at,
      started_at: null,
      finished_at: null,
      operators_count: 0,
      publisher_online: false,
    })
    t.notOk(res.body.includes(created.stream_key), 'the key appears nowhere in the body')
    t.notOk(res.body.includes('stream_key'), 'no stream_key field at any depth')
  })

  tap.test('GET /sessions/:id with a malformed id is 400 invalid_id', async (t) => {
    const app = await makeApp(t)
    const id = randomUUID()
    for (const bad of ['nope', '123', id.slice(1), `${id}a`, id.replace(/-/g, ''), `${id.slice(0, -1)}z`, `urn:uuid:${id}`, `%7B${id}%7D`]) {
      assertError(t, await app.inject({ method: 'GET', url: `/sessions/${bad}` }), 400, 'invalid_id')
    }
  })

  tap.test('GET /sessions/:id of an unknown uuid is 404 session_not_found', async (t) => {
    const app = await makeApp(t)
    assertError(t, await app.inject({ method: 'GET', url: `/sessions/${randomUUID()}` }), 404, 'session_not_found')
    assertError(t, await app.inject({ method: 'GET', url: '/sessions/00000000-0000-0000-0000-000000000000' }), 404, 'session_not_found')
  })

  tap.test('GET /sessions/:id accepts an uppercase uuid', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    const body = await getSession(t, app, created.session_id.toUpperCase())
    t.equal(body.session_id, created.session_id, 'answers with the canonical id')
    t.equal(body.status, 'waiting')
  })

  // DELETE /sessions/:id

  tap.test('DELETE /sessions/:id is 204 with an empty body and finishes the session', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    const res = await app.inject({ method: 'DELETE', url: `/sessions/${created.session_id}` })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '', 'no body')
    const body = await getSession(t, app, created.session_id)
    t.equal(body.status, 'finished')
    assertIso(t, body.finished_at, 'finished_at')
    t.ok(Date.parse(String(body.finished_at)) >= Date.parse(created.created_at), 'finished after it was created')
    t.equal(body.started_at, null, 'never started')
    t.equal(body.publisher_online, false)
    t.same(app.finished, [created.session_id], 'the end is announced so relays close its sockets')
  })

  tap.test('DELETE of a finished session is 204 again and keeps finished_at', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    t.equal((await app.inject({ method: 'DELETE', url: `/sessions/${created.session_id}` })).statusCode, 204)
    const first = await getSession(t, app, created.session_id)
    const again = await app.inject({ method: 'DELETE', url: `/sessions/${created.session_id.toUpperCase()}` })
    t.equal(again.statusCode, 204)
    t.equal(again.body, '')
    const second = await getSession(t, app, created.session_id)
    t.equal(second.status, 'finished')
    t.equal(second.finished_at, first.finished_at, 'finished_at unchanged')
    t.same(app.finished, [created.session_id, created.session_id], 'announced again: a relay that missed it still closes')
  })

  tap.test('publisher_online and operators\' online come from presence', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    await app.sql`insert into session_operators (session_id, user_id) values (${created.session_id}, 'op-a'), (${created.session_id}, 'op-b')`
    const leavePublisher = app.presence.enter(created.session_id, 'publisher', created.client_id)
    const leaveA = app.presence.enter(created.session_id, 'operator', 'op-a')
    t.equal((await getSession(t, app, created.session_id)).publisher_online, true)
    const listed = (await app.inject({ method: 'GET', url: `/sessions/${created.session_id}/operators` })).json<{ operators: Array<{ user_id: string, online: boolean }> }>()
    t.same(listed.operators.map((o) => [o.user_id, o.online]), [['op-a', true], ['op-b', false]])
    leavePublisher()
    leaveA()
    t.equal((await getSession(t, app, created.session_id)).publisher_online, false)
    const after = (await app.inject({ method: 'GET', url: `/sessions/${created.session_id}/operators` })).json<{ operators: Array<{ online: boolean }> }>()
    t.same(after.operators.map((o) => o.online), [false, false])
  })

  tap.test('DELETE /sessions/:id with a malformed id is 400 invalid_id', async (t) => {
    const app = await makeApp(t)
    for (const bad of ['nope', randomUUID().slice(0, 35), `${randomUUID()}x`]) {
      assertError(t, await app.inject({ method: 'DELETE', url: `/sessions/${bad}` }), 400, 'invalid_id')
    }
  })

  tap.test('DELETE of an unknown session is 404 session_not_found', async (t) => {
    const app = await makeApp(t)
    const id = randomUUID()
    assertError(t, await app.inject({ method: 'DELETE', url: `/sessions/${id}` }), 404, 'session_not_found')
    const [{ count }] = await app.sql<[{ count: number }]>`select count(*)::int as count from streaming_sessions where id = ${id}`
    t.equal(count, 0, 'DELETE creates nothing')
  })

  // GET /sessions/:id/operators

  tap.test('a new session has no operators', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    const res = await app.inject({ method: 'GET', url: `/sessions/${created.session_id}/operators` })
    t.equal(res.statusCode, 200)
    t.match(String(res.headers['content-type']), /^application\/json/)
    t.same(res.json(), { operators: [] })
  })

  tap.test('operators come back in join order with user_id, joined_at and online', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    const other = await createSession(t, app)
    const base = Date.parse('2025-01-02T03:04:05.000Z')
    const joins: Array<[string, Date]> = [
      ['zed', new Date(base)],
      ['alice', new Date(base + 1000)],
      ['ops.team:cam_1-B', new Date(base + 2000)],
    ]
    // Inserted out of join order, so the answer's order is the query's, not the table's.
    for (const [userId, joinedAt] of [joins[2]!, joins[0]!, joins[1]!]) {
      await app.sql`insert into session_operators (session_id, user_id, joined_at) values (${created.session_id}, ${userId}, ${joinedAt})`
    }
    await app.sql`insert into session_operators (session_id, user_id, joined_at) values (${other.session_id}, 'elsewhere', ${new Date(base)})`

    const res = await app.inject({ method: 'GET', url: `/sessions/${created.session_id}/operators` })
    t.equal(res.statusCode, 200)
    const { operators } = res.json<{ operators: Array<Record<string, unknown>> }>()
    t.same(operators.map((operator) => operator.user_id), joins.map(([userId]) => userId), 'in join order, only this session')
    for (const [index, operator] of operators.entries()) {
      t.same(Object.keys(operator).sort(), ['joined_at', 'online', 'user_id'])
      t.equal(operator.joined_at, joins[index]![1].toISOString())
      t.type(operator.online, 'boolean')
    }
    const session = await getSession(t, app, created.session_id)
    t.equal(session.operators_count, 3, 'operators_count counts them')

    // Finished sessions keep their operator list.
    t.equal((await app.inject({ method: 'DELETE', url: `/sessions/${created.session_id}` })).statusCode, 204)
    const after = await app.inject({ method: 'GET', url: `/sessions/${created.session_id}/operators` })
    t.equal(after.statusCode, 200)
    t.equal(after.json<{ operators: unknown[] }>().operators.length, 3)
  })

  tap.test('GET /sessions/:id/operators with a malformed id is 400 invalid_id', async (t) => {
    const app = await makeApp(t)
    for (const bad of ['nope', randomUUID().replace(/-/g, '')]) {
      assertError(t, await app.inject({ method: 'GET', url: `/sessions/${bad}/operators` }), 400, 'invalid_id')
    }
  })

  tap.test('GET /sessions/:id/operators of an unknown session is 404 session_not_found', async (t) => {
    const app = await makeApp(t)
    assertError(t, await app.inject({ method: 'GET', url: `/sessions/${randomUUID()}/operators` }), 404, 'session_not_found')
  })

  // Routes and the error shape

  tap.test('unknown routes are 404 route_not_found in the error shape', async (t) => {
    const app = await makeApp(t)
    const id = randomUUID()
    const requests: Array<{ method: 'GET' | 'PUT' | 'PATCH' | 'POST' | 'DELETE', url: string }> = [
      { method: 'GET', url: '/nope' },
      { method: 'PUT', url: '/sessions' },
      { method: 'DELETE', url: '/sessions' },
      { method: 'PATCH', url: `/sessions/${id}` },
      { method: 'POST', url: `/sessions/${id}/operators` },
      { method: 'GET', url: `/sessions/${id}/nope` },
      { method: 'POST', url: '/health' },
    ]
    for (const request of requests) {
      assertError(t, await app.inject(request), 404, 'route_not_found')
    }
  })

  tap.test('every error response is exactly {error: {code, message}}', async (t) => {
    const app = await makeApp(t)
    const id = randomUUID()
    const cases: Array<[() => Promise<LightMyRequestResponse>, number, string]> = [
      [async () => await postJson(app, '{}'), 400, 'invalid_body'],
      [async () => await postJson(app, '{'), 400, 'invalid_json'],
      [async () => await postJson(app, 'x', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
      [async () => await postJson(app, `"${'x'.repeat(70 * 1024)}"`), 413, 'payload_too_large'],
      [async () => await app.inject({ method: 'GET', url: '/sessions/bad' }), 400, 'invalid_id'],
      [async () => await app.inject({ method: 'DELETE', url: `/sessions/${id}` }), 404, 'session_not_found'],
      [async () => await app.inject({ method: 'GET', url: '/nope' }), 404, 'route_not_found'],
    ]
    for (const [request, status, code] of cases) {
      assertError(t, await request(), status, code)
    }
  })

  // Operations: /health, /ready, /metrics, request ids, logs

  tap.test('/health is 200 {"status":"ok"}', async (t) => {
    const app = await makeApp(t)
    const res = await app.inject({ method: 'GET', url: '/health' })
    t.equal(res.statusCode, 200)
    t.match(String(res.headers['content-type']), /^application\/json/)
    t.same(res.json(), { status: 'ok' })
  })

  tap.test('/ready is 200 with its checks when the database answers and migrations are applied', async (t) => {
    const app = await makeApp(t)
    const res = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(res.statusCode, 200)
    const body = res.json<{ status: string, checks: Record<string, string> }>()
    t.equal(body.status, 'ready')
    t.same(body.checks, { draining: 'ok', database: 'ok', migrations: 'ok' })
  })

  tap.test('/ready is 503 not_ready once the node is draining, while /health stays 200', async (t) => {
    const app = await makeApp(t)
    app.readiness.startDraining()
    const res = await app.inject({ method: 'GET', url: '/ready' })
    assertError(t, res, 503, 'not_ready', ['checks'])
    const { checks } = res.json<{ checks: Record<string, string> }>()
    t.not(checks.draining, 'ok', 'names the failed check')
    t.equal(checks.database, 'ok')
    const health = await app.inject({ method: 'GET', url: '/health' })
    t.equal(health.statusCode, 200)
    t.same(health.json(), { status: 'ok' })
  })

  tap.test('/metrics serves the Prometheus text format with HTTP and process metrics', async (t) => {
    const app = await makeApp(t)
    const created = await createSession(t, app)
    await getSession(t, app, created.session_id)
    // The request histogram is observed when a response has finished.
    const { res, parsed } = await eventually(async () => {
      const res = await app.inject({ method: 'GET', url: '/metrics' })
      const parsed = parsePrometheus(res.body)
      const seen = parsed.samples.some((sample) => sample.name === 'http_request_duration_seconds_count' && sample.labels.route === '/sessions/:id')
      return seen ? { res, parsed } : undefined
    }, 'the GET /sessions/:id observation')
    t.equal(res.statusCode, 200)
    t.match(String(res.headers['content-type']), /^text\/plain/)
    t.match(String(res.headers['content-type']), /version=0\.0\.4/)
    const names = new Set(parsed.samples.map((sample) => sample.name))
    t.ok(names.has('http_request_duration_seconds_bucket'), 'request duration buckets')
    t.ok(names.has('process_cpu_seconds_total'), 'default process metrics')
    t.equal(parsed.types.get('http_request_duration_seconds'), 'histogram')
    const get = parsed.samples.find((sample) => sample.name === 'http_request_duration_seconds_count' && sample.labels.route === '/sessions/:id')
    t.match(get?.labels, { method: 'GET', status_code: '200', role: 'control-plane' }, 'labelled by method, route, status and role')
    t.ok((get?.value ?? 0) >= 1)
    t.ok(parsed.samples.some((sample) => sample.name === 'http_request_duration_seconds_bucket' && sample.labels.le === '+Inf'), 'a +Inf bucket')
  })

  tap.test('responses carry an x-request-id and echo an incoming one', async (t) => {
    const app = await makeApp(t)
    const first = await app.inject({ method: 'GET', url: '/health' })
    const second = await app.inject({ method: 'GET', url: '/nope' })
    for (const res of [first, second]) {
      t.ok(typeof res.headers['x-request-id'] === 'string' && res.headers['x-request-id'] !== '', 'has a request id')
    }
    t.not(first.headers['x-request-id'], second.headers['x-request-id'], 'one id per request')
    const echoed = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'trace-abc-123' } })
    t.equal(echoed.headers['x-request-id'], 'trace-abc-123')
    const echoedError = await app.inject({ method: 'GET', url: `/sessions/${randomUUID()}`, headers: { 'x-request-id': 'trace-err-1' } })
    t.equal(echoedError.statusCode, 404)
    t.equal(echoedError.headers['x-request-id'], 'trace-err-1', 'errors echo it too')
  })

  tap.test('request logs are one line per request and never contain a stream key', async (t) => {
    const lines: string[] = []
    const app = await makeApp(t, { logs: lines })
    const created = await createSession(t, app, randomUUID(), { 'x-request-id': 'log-create' })
    const key = created.stream_key
    const requests: Array<{ id: string, method: 'GET' | 'DELETE', url: string, status: number }> = [
      { id: 'log-get', method: 'GET', url: `/sessions/${created.session_id}?stream_key=${key}`, status: 200 },
      { id: 'log-ws', method: 'GET', url: `/ws/stream/${created.session_id}/${created.client_id}?stream_key=${key}`, status: 404 },
      { id: 'log-secret', method: 'GET', url: '/nope?a=1&stream_key=SECRET&token=TOKEN123&b=2', status: 404 },
      { id: 'log-encoded', method: 'GET', url: '/nope?stream%5Fkey=SECRET&STREAM_KEY=SECRET', status: 404 },
      { id: 'log-bad', method: 'GET', url: '/sessions/not-a-uuid?stream_key=SECRET', status: 400 },
      { id: 'log-delete', method: 'DELETE', url: `/sessions/${created.session_id}`, status: 204 },
    ]
    for (const request of requests) {
      const res = await app.inject({ method: request.method, url: request.url, headers: { 'x-request-id': request.id } })
      t.equal(res.statusCode, request.status, `${request.method} ${request.url.split('?')[0]}`)
    }
    const ids = ['log-create', ...requests.map((request) => request.id)]
    const parsed = await eventually(() => {
      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      const done = ids.every((id) => records.some((record) => record.reqId === id && record.statusCode !== undefined))
      return done ? records : undefined
    }, 'a request line for every request')

    const text = lines.join('')
    t.notOk(text.includes(key), 'the stream key is never logged')
    t.notOk(text.includes('SECRET'), 'a stream_key query value is never logged')
    t.notOk(text.includes('TOKEN123'), 'a token query value is never logged')
    for (const line of lines) t.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'one JSON object per line')

    for (const id of ids) {
      const requestLines = parsed.filter((record) => record.reqId === id && record.statusCode !== undefined)
      t.equal(requestLines.length, 1, `one request line for ${id}`)
      const [line] = requestLines
      t.type(line?.method, 'string')
      t.type(line?.url, 'string')
      t.type(line?.statusCode, 'number')
    }
    const get = parsed.find((record) => record.reqId === 'log-get' && record.statusCode !== undefined)
    t.match(get, { method: 'GET', statusCode: 200, url: `/sessions/${created.session_id}?stream_key=[Redacted]` })
    t.match(parsed.find((record) => record.reqId === 'log-create' && record.statusCode !== undefined), { method: 'POST', url: '/sessions', statusCode: 201 })
    t.match(parsed.find((record) => record.reqId === 'log-delete' && record.statusCode !== undefined), { method: 'DELETE', statusCode: 204 })
  })

  // PostgreSQL lost

  tap.test('with the database unreachable, session requests are 503 db_unavailable, /ready 503 and /health 200', async (t) => {
    const app = await makeApp(t, { database: await unreachableDatabase(t) })
    const started = Date.now()
    const created = await postJson(app, JSON.stringify({ client_id: randomUUID() }))
    t.ok(Date.now() - started < 6000, `answered within 6 s (${Date.now() - started} ms)`)
    assertError(t, created, 503, 'db_unavailable')
    const id = randomUUID()
    assertError(t, await app.inject({ method: 'GET', url: `/sessions/${id}` }), 503, 'db_unavailable')
    assertError(t, await app.inject({ method: 'DELETE', url: `/sessions/${id}` }), 503, 'db_unavailable')
    assertError(t, await app.inject({ method: 'GET', url: `/sessions/${id}/operators` }), 503, 'db_unavailable')
    // Validation still comes first: a malformed request is the client's fault.
    assertError(t, await app.inject({ method: 'GET', url: '/sessions/bad' }), 400, 'invalid_id')

    const ready = await app.inject({ method: 'GET', url: '/ready' })
    assertError(t, ready, 503, 'not_ready', ['checks'])
    const { checks } = ready.json<{ checks: Record<string, string> }>()
    t.not(checks.database, 'ok', 'the database check failed')
    t.equal(checks.draining, 'ok')
    const health = await app.inject({ method: 'GET', url: '/health' })
    t.equal(health.statusCode, 200)
    t.same(health.json(), { status: 'ok' })
  })
}
