import t from 'tap'
import { Redis } from 'ioredis'
import {
  ConfigInvalidError, createLogger, loadConfig, redactCredentialsIn, redactUrlCredentials, serializeError,
} from '@streaming-service/core'
import { TEST_REDIS_URL } from './backplane-helper.js'

t.test('a URL keeps scheme, user, host, port and path; its password becomes [Redacted]', async (t) => {
  t.equal(redactUrlCredentials('postgres://app:hunter2@db.internal:5432/streams'), 'postgres://app:[Redacted]@db.internal:5432/streams')
  t.equal(redactUrlCredentials('redis://:hunter2@redis:6379/0'), 'redis://:[Redacted]@redis:6379/0')
  t.equal(redactUrlCredentials('rediss://default:hunter2@cache.example:6380'), 'rediss://default:[Redacted]@cache.example:6380')
  t.equal(redactUrlCredentials('postgres://app:p%40ss%3Aw0rd@db/x?sslmode=require'), 'postgres://app:[Redacted]@db/x?sslmode=require', 'percent-encoded')
  t.equal(redactUrlCredentials('postgres://db/x?user=app&password=hunter2&sslmode=require'), 'postgres://db/x?user=app&password=[Redacted]&sslmode=require',
    'a password query parameter')
  t.equal(redactUrlCredentials('postgres://app@db:5432/x'), 'postgres://app@db:5432/x', 'a user alone is no secret')
  t.equal(redactUrlCredentials('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379')
  const once = redactUrlCredentials('postgres://app:hunter2@db/x')
  t.equal(redactUrlCredentials(once), once, 'redacting twice changes nothing')
})

t.test('a password with characters a URL parser would read as host, path or query is hidden whole', async (t) => {
  t.equal(redactUrlCredentials('postgres://app:hunter 2@db host/x'), 'postgres://app:[Redacted]@db host/x', 'white space (not a valid URL)')
  t.equal(redactUrlCredentials('redis://:se@cr/et@[bad'), 'redis://:[Redacted]@[bad', 'an unencoded @ and /')
  t.equal(redactUrlCredentials('postgres://app:12?x#y@db/x'), 'postgres://app:[Redacted]@db/x', 'an unencoded ? and # (parses as port 12 and a query)')
})

t.test('messages: configured URLs are redacted whole, any other URL with a password too', async (t) => {
  const configured = 'postgres://app:two words@db/x'
  t.equal(redactCredentialsIn(`Invalid url: "${configured}"`, [configured]), 'Invalid url: "postgres://app:[Redacted]@db/x"')
  t.equal(redactCredentialsIn('connect to redis://u:hunter2@cache:6379 failed; retrying'), 'connect to redis://u:[Redacted]@cache:6379 failed; retrying')
  t.equal(redactCredentialsIn('nothing to hide at http://example.com/a'), 'nothing to hide at http://example.com/a')
})

t.test('config errors never echo a password of DATABASE_URL or REDIS_URL', async (t) => {
  const err = t.throws(() => loadConfig({
    DATABASE_URL: 'postgres://app:hunter2@db host/streams',
    REDIS_URL: 'redis://:s3cr3t pass@[bad',
    HTTP_PORT: 'eighty',
  })) as InstanceType<typeof ConfigInvalidError>
  t.equal(err.code, 'SS_CONFIG_INVALID')
  t.same(err.problems.map((problem) => problem.split(/[=:]/)[0]).sort(), ['DATABASE_URL', 'HTTP_PORT', 'REDIS_URL'])
  t.notMatch(err.message, /hunter2|s3cr3t/, 'no password in the message')
  t.notMatch(err.problems.join('\n'), /hunter2|s3cr3t/, 'nor in the problems')
  t.match(err.message, 'postgres://app:[Redacted]@db host/streams', 'user, host and path are kept')
  t.match(err.message, 'redis://:[Redacted]@[bad')
})

t.test('logged errors lose credentials: a real WRONGPASS from Redis carries the AUTH arguments', async (t) => {
  const password = `wrong-${process.pid}`
  const url = new URL(TEST_REDIS_URL)
  url.username = 'nobody'
  url.password = password
  const client = new Redis(url.toString(), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  t.teardown(() => client.disconnect())
  const emitted = new Promise<Error & { command?: unknown }>((resolve) => client.once('error', resolve))
  const connected = await client.connect().then(() => true, () => false)
  if (connected) throw new Error(`Redis at ${TEST_REDIS_URL} accepted user "nobody": the test needs a Redis without that ACL user`)
  const err = await emitted
  t.match(err.message, /WRONGPASS|invalid username-password/)
  t.ok(JSON.stringify(err.command ?? {}).includes(password), 'ioredis puts the password on the error (what this guards against)')

  t.notOk(JSON.stringify(serializeError(err)).includes(password), 'serializeError drops it')
  t.match(serializeError(err), { message: /WRONGPASS|invalid username-password/, command: { name: /^(hello|auth)$/ } }, 'the command name stays')

  const lines: string[] = []
  const logger = createLogger('info', 'test', { write (line: string) { lines.push(line) } })
  logger.child({ component: 'backplane' }).warn({ err }, 'backplane connection error')
  logger.error({ err: new Error(`cannot reach ${url.toString()}`) }, 'failed')
  t.equal(lines.length, 2)
  t.notOk(lines.join('').includes(password), 'no log line carries it, children included')
  t.match(lines[1], 'redis://nobody:[Redacted]@')
})
