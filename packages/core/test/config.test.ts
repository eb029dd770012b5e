import t from 'tap'
import { configKeys, ConfigInvalidError, loadConfig, parseDuration, parseSize } from '@streaming-service/core'

t.test('defaults describe a development node on :8090 with the embedded database', async (t) => {
  const config = loadConfig({})
  t.equal(config.appEnv, 'development')
  t.same(config.http, { host: '0.0.0.0', port: 8090 })
  t.equal(config.db.embedded, true)
  t.equal(config.db.dataDir, './.data')
  t.equal(config.db.port, 5432)
  t.equal(config.db.user, 'postgres')
  t.equal(config.db.database, 'streaming_service')
  t.equal(config.db.sslmode, 'disable')
  t.equal(config.redis.url, undefined)
  t.equal(config.redis.clusterNodes, undefined, 'no Redis Cluster')
  t.equal(config.redis.keyPrefix, 'ss:')
  t.equal(config.ws.maxMessageSize, 10 * 1024 * 1024)
  t.equal(config.ws.pingIntervalMs, 20_000)
  t.equal(config.ws.baseUrl, undefined)
  t.equal(config.session.maxOperators, 10)
  t.equal(config.logLevel, 'info')
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.db), 'the config is frozen')
})

t.test('sizes accept bytes and KB/MB-style units', async (t) => {
  t.equal(parseSize('10MB'), 10 * 1024 * 1024)
  t.equal(parseSize('64KB'), 64 * 1024)
  t.equal(parseSize('64kb'), 64 * 1024)
  t.equal(parseSize('1 GB'), 1024 ** 3)
  t.equal(parseSize('512'), 512)
  t.equal(parseSize('512B'), 512)
  t.equal(loadConfig({ WS_MAX_MESSAGE_SIZE: '64KB' }).ws.maxMessageSize, 65536)
  t.throws(() => parseSize('ten megabytes'))
  t.throws(() => parseSize('10XB'))
})

t.test('durations accept 20s, 500ms and plain milliseconds', async (t) => {
  t.equal(parseDuration('20s'), 20_000)
  t.equal(parseDuration('500ms'), 500)
  t.equal(parseDuration('1500'), 1500)
  t.equal(parseDuration('1.5s'), 1500)
  t.equal(parseDuration('2m'), 120_000)
  t.equal(loadConfig({ WS_PING_INTERVAL: '500ms' }).ws.pingIntervalMs, 500)
  t.throws(() => parseDuration('soon'))
})

t.test('REDIS_CLUSTER_NODES: comma-separated host:port seeds', async (t) => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: ' redis-0:6379, 10.0.0.2:7000,[::1]:7001,' })
  t.same(config.redis.clusterNodes, [{ host: 'redis-0', port: 6379 }, { host: '10.0.0.2', port: 7000 }, { host: '::1', port: 7001 }])
  t.ok(Object.isFrozen(config.redis.clusterNodes), 'frozen with the rest')
  for (const bad of ['redis-0', 'redis-0:0', 'redis-0:70000', 'redis://redis-0:6379', ',']) {
    const err = t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: bad }), ConfigInvalidError) as InstanceType<typeof ConfigInvalidError>
    t.match(err.problems, [/^REDIS_CLUSTER_NODES=/], `${JSON.stringify(bad)} is refused`)
  }
})

t.test('every invalid value is reported together in one error', async (t) => {
  const err = t.throws(() => loadConfig({
    HTTP_PORT: 'eighty',
    WS_MAX_MESSAGE_SIZE: 'huge',
    WS_PING_INTERVAL: '-1s',
    SESSION_MAX_OPERATORS: '0',
    LOG_LEVEL: 'loud',
    APP_ENV: 'staging',
    WS_BASE_URL: 'not a url',
  })) as InstanceType<typeof ConfigInvalidError>
  t.ok(err instanceof ConfigInvalidError)
  t.equal(err.code, 'SS_CONFIG_INVALID')
  const named = err.problems.map((problem) => problem.split(/[=:]/)[0]).sort()
  t.same(named, ['APP_ENV', 'HTTP_PORT', 'LOG_LEVEL', 'SESSION_MAX_OPERATORS', 'WS_BASE_URL', 'WS_MAX_MESSAGE_SIZE', 'WS_PING_INTERVAL'])
  for (const name of named) t.match(err.message, name, `the message names ${name}`)
})

/** What production needs since SPEC §9. */
const TOKEN_AUTH = { AUTH_MODE: 'token', API_KEYS: 'k'.repeat(32), AUTH_JWT_SECRET: 's'.repeat(32) }

t.test('production without DB_PASSWORD is refused with a clear message', async (t) => {
  const err = t.throws(() => loadConfig({ APP_ENV: 'production', DB_HOST: 'db.internal' })) as InstanceType<typeof ConfigInvalidError>
  t.equal(err.code, 'SS_CONFIG_INVALID')
  t.match(err.message, /DB_PASSWORD: required in production/)
  t.equal(loadConfig({ APP_ENV: 'production', DB_HOST: 'db.internal', DB_PASSWORD: 's3cret', ...TOKEN_AUTH }).db.embedded, false)
})

t.test('production refuses the embedded database', async (t) => {
  const err = t.throws(() => loadConfig({ APP_ENV: 'production', DB_PASSWORD: 'x' })) as InstanceType<typeof ConfigInvalidError>
  t.match(err.message, /DB_HOST or DATABASE_URL: required in production/)
})

t.test('DATABASE_URL or DB_HOST selects PostgreSQL', async (t) => {
  t.equal(loadConfig({ DB_HOST: 'localhost' }).db.embedded, false)
  const config = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5433/x' })
  t.equal(config.db.embedded, false)
  t.equal(config.db.url, 'postgres://u:p@db:5433/x')
})

t.test('APP_PORT is an alias of HTTP_PORT; both set must agree', async (t) => {
  t.equal(loadConfig({ APP_PORT: '9000' }).http.port, 9000)
  t.equal(loadConfig({ HTTP_PORT: '9001', APP_PORT: '9001' }).http.port, 9001)
  t.throws(() => loadConfig({ HTTP_PORT: '9001', APP_PORT: '9002' }), { code: 'SS_CONFIG_INVALID' })
})

t.test('empty values count as unset', async (t) => {
  const config = loadConfig({ DB_HOST: '', REDIS_URL: '', WS_BASE_URL: '' })
  t.equal(config.db.embedded, true)
  t.equal(config.redis.url, undefined)
})

t.test('WS_BASE_URL loses its trailing slash', async (t) => {
  t.equal(loadConfig({ WS_BASE_URL: 'wss://stream.example.com/' }).ws.baseUrl, 'wss://stream.example.com')
})

t.test('.env.example lists every variable the config reads', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const example = await readFile(new URL('../../../.env.example', import.meta.url), 'utf8')
  const listed = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]))
  for (const key of configKeys) t.ok(listed.has(key), `${key} is in .env.example`)
})

t.test('TRUST_PROXY: nobody by default; IPs, CIDR ranges, named ranges or a hop count', async (t) => {
  t.equal(loadConfig({}).trustProxy, false, 'unset: X-Forwarded-* is believed from nobody')
  t.equal(loadConfig({ TRUST_PROXY: 'none' }).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: '0' }).trustProxy, false)
  t.equal(loadConfig({ TRUST_PROXY: '2' }).trustProxy, 2)
  t.same(loadConfig({ TRUST_PROXY: ' 10.0.0.0/8, 192.0.2.7,2001:db8::/32 , ::1, loopback ' }).trustProxy,
    ['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', '::1', 'loopback'])
  const err = t.throws(() => loadConfig({ TRUST_PROXY: '10.0.0.0/33, lb.internal, 192.0.2.7', HTTP_PORT: 'x' })) as InstanceType<typeof ConfigInvalidError>
  t.equal(err.code, 'SS_CONFIG_INVALID')
  t.same(err.problems.map((problem) => problem.split(/[=:]/)[0]).sort(), ['HTTP_PORT', 'TRUST_PROXY'], 'reported with the other problems')
  t.match(err.message, /"10\.0\.0\.0\/33", "lb\.internal": not an IP address/, 'names every bad entry')
  t.ok(configKeys.includes('TRUST_PROXY'), 'a key of the schema (deploy checks, .env.example)')
})

t.test('access control: open by default outside production; production requires token mode, naming AUTH_MODE', async (t) => {
  const open = loadConfig({})
  t.equal(open.auth.mode, 'open')
  t.equal(open.auth.corsOrigins, '*', 'any origin in development')
  for (const mode of [undefined, 'open']) {
    const err = t.throws(() => loadConfig({ APP_ENV: 'production', DB_HOST: 'db', DB_PASSWORD: 'x', ...(mode === undefined ? {} : { AUTH_MODE: mode }) })) as InstanceType<typeof ConfigInvalidError>
    t.match(err.message, /AUTH_MODE: must be "token" in production/, `AUTH_MODE ${mode ?? 'unset'}`)
  }
  const production = loadConfig({ APP_ENV: 'production', DB_HOST: 'db', DB_PASSWORD: 'x', ...TOKEN_AUTH })
  t.equal(production.auth.mode, 'token')
  t.same(production.auth.corsOrigins, [], 'no origin in production unless listed')
})

t.test('access control: token mode needs API keys and a token key; problems name variables, never secrets', async (t) => {
  const missing = t.throws(() => loadConfig({ AUTH_MODE: 'token' })) as InstanceType<typeof ConfigInvalidError>
  t.match(missing.message, /API_KEYS: required with AUTH_MODE=token/)
  t.match(missing.message, /AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY: required/)
  const shortKey = 'short-key-do-not-print'
  const shortSecret = 'short-secret-do-not-print'
  const weak = t.throws(() => loadConfig({ AUTH_MODE: 'token', API_KEYS: `${'k'.repeat(40)}, ${shortKey}`, AUTH_JWT_SECRET: shortSecret })) as InstanceType<typeof ConfigInvalidError>
  t.match(weak.message, /API_KEYS: key 2 has 22 characters/)
  t.match(weak.message, /AUTH_JWT_SECRET: has 25 bytes/)
  t.notOk(weak.message.includes(shortKey) || weak.message.includes(shortSecret), 'no secret in the message')
  const both = t.throws(() => loadConfig({ ...TOKEN_AUTH, AUTH_JWT_PUBLIC_KEY: 'not a key' })) as InstanceType<typeof ConfigInvalidError>
  t.match(both.message, /set one, not both/)
  t.match(both.message, /AUTH_JWT_PUBLIC_KEY: not a PEM public key/)
  const config = loadConfig({ ...TOKEN_AUTH, API_KEYS: `${'a'.repeat(32)},${'b'.repeat(32)}` })
  t.same(config.auth.apiKeys, ['a'.repeat(32), 'b'.repeat(32)], 'several keys, for rotation')
})

t.test('CORS_ORIGINS is a list of origins', async (t) => {
  t.same(loadConfig({ CORS_ORIGINS: 'https://a.example, http://b.example:8080' }).auth.corsOrigins, ['https://a.example', 'http://b.example:8080'])
  t.equal(loadConfig({ CORS_ORIGINS: '*' }).auth.corsOrigins, '*')
  const err = t.throws(() => loadConfig({ CORS_ORIGINS: 'https://a.example/path,example.com' })) as InstanceType<typeof ConfigInvalidError>
  t.match(err.message, /"https:\/\/a.example\/path" is not an origin/)
  t.match(err.message, /"example.com" is not an origin/)
})
