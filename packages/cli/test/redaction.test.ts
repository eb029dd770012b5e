import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createTestDatabase, freePort, runCli, startService, TEST_REDIS_URL } from '@streaming-service/testing'

// SPEC §9: credentials inside DATABASE_URL / REDIS_URL never reach stdout or
// stderr — not in config errors, connection failures or logs.

const PASSWORD = `pw-${randomUUID()}`

function withPassword (url: string, user?: string): string {
  const parsed = new URL(url)
  if (user !== undefined) parsed.username = user
  parsed.password = PASSWORD
  return parsed.toString()
}

t.test('config errors: invalid URLs with passwords are reported redacted by every command (exit 2)', async (t) => {
  const env = {
    DATABASE_URL: `postgres://app:${PASSWORD}@db host/streams`,
    REDIS_URL: `redis://:${PASSWORD}@[bad`,
  }
  for (const args of [['api'], ['migrate', 'up'], ['seed']]) {
    const run = await runCli(args, env)
    t.equal(run.code, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, /DATABASE_URL=.*REDIS_URL=/s, 'both problems reported')
    t.match(run.stderr, 'postgres://app:[Redacted]@db host/streams', 'scheme, user, host and path kept')
    t.notOk(run.stdout.includes(PASSWORD) || run.stderr.includes(PASSWORD), `${args.join(' ')}: no password in stdout or stderr`)
  }
})

t.test('connection failures: a closed port or an unknown host with a password in DATABASE_URL', async (t) => {
  const closed = `postgres://app:${PASSWORD}@127.0.0.1:${await freePort()}/streams`
  const unknownHost = `postgres://app:${PASSWORD}@no-such-host.invalid:5432/streams`
  for (const url of [closed, unknownHost]) {
    for (const args of [['migrate', 'up'], ['migrate', 'status'], ['seed']]) {
      const run = await runCli(args, { DATABASE_URL: url, DB_CONNECT_TIMEOUT: '2s' })
      t.equal(run.code, 1, `${args.join(' ')} against ${new URL(url).host}: exit 1 (${run.stderr.trim()})`)
      t.match(run.stderr, 'SS_DB_UNAVAILABLE')
      t.notOk(run.stdout.includes(PASSWORD) || run.stderr.includes(PASSWORD), 'no password in stdout or stderr')
    }
  }
})

t.test('a running node logs neither password: "using database" and Redis refusing the credentials (WRONGPASS)', async (t) => {
  const db = await createTestDatabase(t, 'redaction')
  // The test server trusts local connections: the password is sent, and ignored.
  const service = await startService(t, ['control-plane'], {
    DATABASE_URL: withPassword(db.url),
    REDIS_URL: withPassword(TEST_REDIS_URL, 'nobody'),
    REDIS_KEY_PREFIX: `sstest:${randomUUID()}:`,
    SHUTDOWN_DRAIN: '0ms',
  })
  const using = await service.waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('using database'))
  const expected = new URL(db.url)
  t.equal(using.database, `postgres://${expected.username}@${expected.host}${expected.pathname}`, 'the database is named with its user')
  const refused = await service.waitForLog((line) => /WRONGPASS|invalid username-password/.test(JSON.stringify(line.err ?? '')))
  t.match(refused.err, { command: { name: /^(hello|auth)$/ } }, 'the failed command is named')
  t.equal((await fetch(`${service.url}/ready`)).status, 503, 'not ready without the backplane')
  t.same(await service.stop(), { code: 0, signal: null })
  const output = JSON.stringify(service.logs) + service.stderr()
  t.notOk(output.includes(PASSWORD), `no password in ${service.logs.length} log lines or stderr`)
})
