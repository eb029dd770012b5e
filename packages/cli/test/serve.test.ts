import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import t from 'tap'
import { createTestDatabase, freePort, runCli, startService, startTcpProxy, tempDir, waitFor } from '@streaming-service/testing'

const CLIENT_ID = '6b3c2f3e-6b51-4a43-9d0e-6f1f3c2b1a10'
/** Split roles share a backplane: the local Redis under a prefix of this run's own. */
const REDIS = { REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: `sstest:${randomUUID()}:` }

async function createSession (url: string): Promise<Response> {
  return await fetch(`${url}/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: CLIENT_ID }),
  })
}

t.test('with no database variables the CLI runs on the embedded database and keeps sessions across restarts', async (t) => {
  const dataDir = join(tempDir(), 'data')
  const started = Date.now()
  const first = await startService(t, [], { DATA_DIR: dataDir, SHUTDOWN_DRAIN: '0ms' })
  const created = await createSession(first.url)
  const elapsed = Date.now() - started
  t.equal(created.status, 201)
  // How fast is a benchmark's question (pnpm bench reports first start); here, only that it works.
  t.comment(`POST /sessions answered ${elapsed} ms after spawn`)
  const { session_id: sessionId } = await created.json() as { session_id: string }
  t.ok(first.logs.some((line) => typeof line.msg === 'string' && line.msg.includes('embedded PGlite')), 'the log says which database is in use')

  const locked = await runCli(['api'], { DATA_DIR: dataDir, HTTP_PORT: '0' })
  t.equal(locked.code, 1, 'a second process on the same data dir is refused')
  t.match(locked.stderr, 'SS_DB_DATA_DIR_LOCKED')

  t.same(await first.stop('SIGTERM'), { code: 0, signal: null })
  const second = await startService(t, ['api'], { DATA_DIR: dataDir, SHUTDOWN_DRAIN: '0ms' })
  const fetched = await fetch(`${second.url}/sessions/${sessionId}`)
  t.equal(fetched.status, 200)
  t.match(await fetched.json(), { session_id: sessionId, status: 'waiting' })
  t.same(await second.stop('SIGINT'), { code: 0, signal: null })
})

t.test('SIGTERM: /ready turns 503 at once, the process drains and exits 0', async (t) => {
  const db = await createTestDatabase(t, 'sigterm')
  const service = await startService(t, ['control-plane'], { ...db.env, ...REDIS, SHUTDOWN_DRAIN: '3s' })
  t.equal((await fetch(`${service.url}/ready`)).status, 200)
  service.child.kill('SIGTERM')
  await service.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('draining'))
  const ready = await fetch(`${service.url}/ready`)
  t.equal(ready.status, 503)
  const body = await ready.json() as { error: { code: string }, checks: Record<string, string> }
  t.equal(body.error.code, 'not_ready')
  t.not(body.checks.draining, 'ok')
  t.equal((await fetch(`${service.url}/health`)).status, 200, 'still alive while draining')
  t.same(await service.exited, { code: 0, signal: null })
})

t.test('PostgreSQL unreachable: 503 in the error shape within 6 s, /ready 503, /health 200, recovery when it returns', async (t) => {
  const db = await createTestDatabase(t, 'unreachable')
  const port = await freePort()
  const service = await startService(t, ['control-plane'], { ...db.env, ...REDIS, DB_HOST: '127.0.0.1', DB_PORT: String(port), SHUTDOWN_DRAIN: '0ms' })

  const started = Date.now()
  const refused = await createSession(service.url)
  t.ok(Date.now() - started < 6000, `answered in ${Date.now() - started} ms`)
  t.equal(refused.status, 503)
  const body = await refused.json() as { error: { code: string, message: string } }
  t.equal(body.error.code, 'db_unavailable')
  t.type(body.error.message, 'string')
  const ready = await fetch(`${service.url}/ready`)
  t.equal(ready.status, 503)
  t.match(await ready.json(), { error: { code: 'not_ready' }, checks: { database: /.+/ } })
  t.equal((await fetch(`${service.url}/health`)).status, 200)

  // The database "comes back" where the process was told it is.
  await startTcpProxy(t, Number(new URL(db.url).port || 5432), port)
  const recovered = await waitFor('/ready to turn 200', async () => (await fetch(`${service.url}/ready`)).status === 200, 15_000)
  t.ok(recovered < 15_000, `ready ${recovered} ms after the database returned (migrations applied in the background)`)
  t.equal((await createSession(service.url)).status, 201)
  t.equal(service.child.exitCode, null, 'never crashed')
  t.same(await service.stop(), { code: 0, signal: null })
})

t.test('invalid configuration: every problem at once, exit code 2', async (t) => {
  const run = await runCli(['api'], { HTTP_PORT: 'x', WS_PING_INTERVAL: 'often', SESSION_MAX_OPERATORS: '-3' })
  t.equal(run.code, 2)
  for (const name of ['HTTP_PORT', 'WS_PING_INTERVAL', 'SESSION_MAX_OPERATORS']) t.match(run.stderr, name)
  t.match(run.stderr, /3 problems/)
})

t.test('production without DB_PASSWORD is refused before anything starts', async (t) => {
  const run = await runCli(['api'], { APP_ENV: 'production', DB_HOST: '127.0.0.1' })
  t.equal(run.code, 2)
  t.match(run.stderr, 'DB_PASSWORD: required in production')
})

t.test('split roles refuse the embedded database and need REDIS_URL', async (t) => {
  for (const role of ['control-plane', 'relay']) {
    const run = await runCli([role], { DATA_DIR: tempDir() })
    t.equal(run.code, 2)
    t.match(run.stderr, new RegExp(`DB_HOST or DATABASE_URL: required for "${role}"`))
    t.match(run.stderr, new RegExp(`REDIS_URL: required for "${role}"`))
  }
})

t.test('unknown commands and options are usage errors (exit 2)', async (t) => {
  t.equal((await runCli(['frobnicate'], {})).code, 2)
  t.equal((await runCli(['migrate', 'sideways'], {})).code, 2)
  const help = await runCli(['--help'], {})
  t.equal(help.code, 0)
  for (const command of ['api', 'control-plane', 'relay', 'migrate', 'seed', 'command']) t.match(help.stdout, command)
})

t.test('production with AUTH_MODE=open is refused before anything starts, naming AUTH_MODE', async (t) => {
  const run = await runCli(['api'], { APP_ENV: 'production', DB_HOST: '127.0.0.1', DB_PASSWORD: 'x', AUTH_MODE: 'open' })
  t.equal(run.code, 2)
  t.match(run.stderr, 'AUTH_MODE: must be "token" in production')
})
