import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { createBaseApp, createLogger, createMetrics, Readiness, type TrustProxy } from '@streaming-service/core'

// The HTTP shell of every role (SPEC §3, §10): the framework's and the HTTP
// parser's own refusals in the error shape, and which request ids are kept.

const SHAPE_KEYS = ['error']
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface Shell { app: FastifyInstance, lines: Array<Record<string, unknown>> }

async function shell (t: Test, trustProxy?: TrustProxy, setup: (app: FastifyInstance) => void = () => {}): Promise<Shell> {
  const lines: Array<Record<string, unknown>> = []
  const logger = createLogger('info', 'test', { write (line: string) { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const app = createBaseApp({ logger, metrics: createMetrics('test'), readiness: new Readiness(), bodyLimit: 1024, trustProxy })
  app.get('/sessions/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  app.post('/echo', async (request) => request.body)
  setup(app)
  t.teardown(async () => { await app.close() })
  await app.ready()
  return { app, lines }
}

/** Status, the exact body shape, a snake_case code, a message and a request id: one assertion. */
function assertShape (t: Test, response: { status: number, body: string, requestId: unknown }, status: number, code: string): void {
  let body: Record<string, unknown> | undefined
  try { body = JSON.parse(response.body) as Record<string, unknown> } catch {}
  const error = body?.error as { code?: unknown, message?: unknown } | undefined
  t.same({
    status: response.status,
    keys: Object.keys(body ?? {}),
    errorKeys: Object.keys(error ?? {}).sort(),
    code: error?.code,
    message: typeof error?.message === 'string' && error.message !== '',
    requestId: typeof response.requestId === 'string' && response.requestId !== '',
  }, { status, keys: SHAPE_KEYS, errorKeys: ['code', 'message'], code, message: true, requestId: true }, `${status} ${code}`)
}

async function inject (app: FastifyInstance, method: string, url: string, headers: Record<string, string> = {}, payload?: string) {
  const res = await app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) })
  return { status: res.statusCode, body: res.body, requestId: res.headers['x-request-id'] }
}

/** Sends bytes as they are over TCP (what a browser or curl would refuse to send) and reads until the server closes. */
async function raw (t: Test, app: FastifyInstance, request: string) {
  if (!app.server.listening) await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request))
    let received = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no close within 5 s; got ${JSON.stringify(received)}`)) }, 5000)
    socket.on('data', (chunk: Buffer) => { received += chunk.toString('latin1') })
    socket.on('close', () => { clearTimeout(timer); resolve(received) })
    socket.on('error', () => {})
  })
  const [head = '', body = ''] = text.split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers = Object.fromEntries(headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  t.match(headers['content-type'], /^application\/json/, 'JSON')
  return { status: Number(statusLine.split(' ')[1]), body, requestId: headers['x-request-id'] }
}

t.test('routing errors are in the SPEC §3 shape: over-long segment 414, bad percent-encoding 400', async (t) => {
  const { app, lines } = await shell(t)
  assertShape(t, await inject(app, 'GET', `/sessions/${'a'.repeat(300)}`), 414, 'param_too_long')
  assertShape(t, await inject(app, 'GET', '/sessions/%E2%98'), 400, 'url_malformed')
  assertShape(t, await inject(app, 'GET', '/%E2%98/x'), 400, 'url_malformed')
  t.equal((await inject(app, 'GET', `/sessions/${'a'.repeat(256)}`)).status, 200, 'a 256-character segment is still routed')

  const logged = await inject(app, 'GET', `/sessions/${'b'.repeat(300)}`, { 'x-request-id': 'too-long-1' })
  t.equal(logged.requestId, 'too-long-1', 'the request id is echoed on routing errors too')
  t.match(lines.find((line) => line.reqId === 'too-long-1'), { msg: 'request completed', statusCode: 414, method: 'GET' },
    'and the request is logged like any other')
})

t.test('methods: a known one on a path without it is 404 route_not_found, one the parser does not know 501', async (t) => {
  const { app } = await shell(t)
  for (const method of ['PUT', 'PATCH', 'PURGE', 'PROPFIND', 'TRACE']) {
    assertShape(t, await inject(app, method, '/health'), 404, 'route_not_found')
  }
  assertShape(t, await raw(t, app, 'FROB /health HTTP/1.1\r\nHost: x\r\n\r\n'), 501, 'method_not_implemented')
})

t.test('the HTTP parser\'s refusals are in the shape too: header overflow 431, malformed request 400', async (t) => {
  const { app, lines } = await shell(t)
  const overflow = await raw(t, app, `GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(64 * 1024)}\r\n\r\n`)
  assertShape(t, overflow, 431, 'headers_too_large')
  t.match(overflow.requestId, UUID)
  t.match(lines.find((line) => line.reqId === overflow.requestId), { msg: 'request refused by the HTTP parser', statusCode: 431 }, 'logged with its id')
  assertShape(t, await raw(t, app, `GET /${'x'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`), 431, 'headers_too_large')
  assertShape(t, await raw(t, app, 'GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n'), 400, 'request_malformed')
  assertShape(t, await raw(t, app, 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'), 400, 'request_malformed')
})

t.test('bodies: too large 413, not JSON 415, broken JSON 400', async (t) => {
  const { app } = await shell(t)
  const json = { 'content-type': 'application/json' }
  t.equal((await inject(app, 'POST', '/echo', json, '{"a":1}')).status, 200)
  assertShape(t, await inject(app, 'POST', '/echo', json, JSON.stringify({ a: 'x'.repeat(2000) })), 413, 'payload_too_large')
  assertShape(t, await inject(app, 'POST', '/echo', { 'content-type': 'text/plain' }, 'hi'), 415, 'unsupported_media_type')
  assertShape(t, await inject(app, 'POST', '/echo', json, '{'), 400, 'invalid_json')
})

t.test('X-Request-Id is kept only when 1-64 characters of A-Z a-z 0-9 . _ -; otherwise a fresh id is echoed and logged', async (t) => {
  const { app, lines } = await shell(t)
  for (const id of ['trace-abc-123', 'a', 'A.b_c-9', 'x'.repeat(64)]) {
    const res = await inject(app, 'GET', '/health', { 'x-request-id': id })
    t.equal(res.requestId, id, `kept: ${id.length > 20 ? `${id.length} characters` : id}`)
    t.ok(lines.some((line) => line.reqId === id && line.msg === 'request completed'), 'and logged as reqId')
  }
  for (const id of ['x'.repeat(65), 'x'.repeat(10_000), 'has space', '<script>', 'a/b', 'tab\there', 'ünïcode', 'semi;colon']) {
    const res = await inject(app, 'GET', '/health', { 'x-request-id': id })
    t.match(res.requestId, UUID, `replaced: ${JSON.stringify(id.slice(0, 20))}${id.length > 20 ? `… (${id.length})` : ''}`)
    const line = lines.find((record) => record.reqId === res.requestId)
    t.match(line, { msg: 'request completed' }, 'the fresh id is the one logged')
    t.notOk(lines.some((record) => record.reqId === id), 'the offered one never is')
  }
})

t.test('the logged client address follows X-Forwarded-For only from a proxy in TRUST_PROXY', async (t) => {
  const forwarded = { 'x-forwarded-for': '203.0.113.9' }
  const cases: Array<[TrustProxy | undefined, string, string]> = [
    [undefined, '192.0.2.1', '192.0.2.1'],
    [['10.0.0.0/8'], '192.0.2.1', '192.0.2.1'],
    [['10.0.0.0/8'], '10.4.0.2', '203.0.113.9'],
    [1, '192.0.2.1', '203.0.113.9'],
  ]
  for (const [trustProxy, peer, logged] of cases) {
    const { app, lines } = await shell(t, trustProxy)
    const res = await app.inject({ method: 'GET', url: '/health', remoteAddress: peer, headers: { ...forwarded, 'x-request-id': 'peer-1' } })
    t.equal(res.statusCode, 200)
    t.match(lines.find((line) => line.reqId === 'peer-1'), { remoteAddress: logged }, `TRUST_PROXY ${JSON.stringify(trustProxy ?? 'unset')}, peer ${peer}: ${logged}`)
  }
})

t.test('a request that completes while the app closes is 503 shutting_down in the shape, not Fastify\'s own body', async (t) => {
  let closeBegan = () => {}
  const closing = new Promise<void>((resolve) => { closeBegan = resolve })
  const { app } = await shell(t, undefined, (app) => {
    app.addHook('preClose', async () => { closeBegan() })
  })
  let partialSeen = () => {}
  const seen = new Promise<void>((resolve) => { partialSeen = resolve })
  app.server.on('connection', (serverSide: Socket) => serverSide.once('data', () => partialSeen()))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as { port: number }).port

  // Headers that began before the close and end after it: the connection is
  // not idle, so the close waits for it, and the request is routed while closing.
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString() })
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  socket.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: late-1\r\n')
  await seen
  const closed = app.close()
  await closing
  socket.write('\r\n')
  await ended
  await closed

  const [head = '', body = ''] = received.split('\r\n\r\n')
  t.match(head, /^HTTP\/1\.1 503 /)
  t.match(head, /\r\nx-request-id: late-1\r\n/i)
  t.match(head, /\r\nconnection: close\r\n/i)
  t.same(JSON.parse(body), { error: { code: 'shutting_down', message: 'this node is shutting down; retry on another' } })
})
