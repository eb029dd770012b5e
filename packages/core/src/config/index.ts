import { cleanEnv, port, str, url, type ReporterOptions } from 'envalid'
import { redactCredentialsIn } from '../credentials.js'
import { ConfigInvalidError } from '../errors.js'
import { parseTrustProxy } from '../http/trust-proxy.js'
import { loadAuthConfig } from './auth.js'
import { loadWebhookConfig } from './webhooks.js'
import type { AppEnv, Config, LogFormat, SslMode } from './types.js'
import { count, duration, durationOrOff, hostPorts, listenPort, parseDuration, parseSize, prefix, size, trustProxy } from './values.js'

export type { AppEnv, Config, DatabaseConfig, LogFormat, SslMode } from './types.js'
export { MIN_SECRET_LENGTH, type AuthConfig, type AuthMode } from './auth.js'
export { webhookUrlProblem, type WebhookConfig } from './webhooks.js'
export { parseDuration, parseSize } from './values.js'

/**
 * Environment variables read by the service, with their defaults. SPEC §6 is
 * the contract; `.env.example` lists every one of them.
 */
export const defaults = {
  APP_ENV: 'development',
  APP_HOST: '0.0.0.0',
  HTTP_PORT: 8090,
  TRUST_PROXY: 'none', // peers whose X-Forwarded-* count: IPs/CIDRs, a hop count, or none
  DB_PORT: 5432,
  DB_USER: 'postgres',
  DB_DATABASE: 'streaming_service',
  DB_SSLMODE: 'disable',
  DB_POOL_MAX: 5, // connections per process; relays share it with admission
  DB_CONNECT_TIMEOUT: '5s',
  DATA_DIR: './.data',
  REDIS_KEY_PREFIX: 'ss:',
  WS_MAX_MESSAGE_SIZE: '10MB', // bytes; 1 KB = 1024 bytes
  WS_PING_INTERVAL: '20s',
  WS_OPERATOR_MAX_BUFFER: '8MB', // unsent bytes per operator before its messages are dropped
  WS_OPERATOR_MAX_LAG: '5s', // how long an operator may stay over that bound before it is cut off (tooSlow)
  WS_OPERATOR_MAX_MESSAGE: '4KB', // bytes; operators only receive: a larger message from one closes it (tooLarge)
  WS_MAX_CONNECTIONS: 10_000, // WebSocket connections per node; the next one is told to try again later
  SESSION_MAX_OPERATORS: 10,
  // Bytes all late-join caches of one relay may hold together: ~64 sessions at
  // 1 MB each (a 2 s group at 4 Mbit/s), a quarter of a relay's 256 MiB memory request.
  RELAY_CACHE_BUDGET: '64MB',
  PRESENCE_TTL: '15s', // a dead relay's connections stop counting as online after this
  SESSION_IDLE_TTL: '24h', // a session that never became active is finished after this (0: never)
  SESSION_RETENTION: '30d', // finished sessions are deleted after this (0: kept forever)
  SESSION_SWEEP_INTERVAL: '1m', // how often a control plane looks for such sessions
  WEBHOOK_TIMEOUT: '5s', // one webhook POST, connect to answer
  WEBHOOK_CONCURRENCY: 16, // webhook POSTs in flight per control plane
  WEBHOOK_POLL_INTERVAL: '250ms', // how often a control plane looks for due events
  WEBHOOK_RETRY_BACKOFF: '1s', // first retry's delay; doubles (with jitter) up to the max
  WEBHOOK_RETRY_BACKOFF_MAX: '10m',
  WEBHOOK_RETRY_FOR: '24h', // an event refused this long after its first attempt is given up (failed)
  SHUTDOWN_DRAIN: '5s', // time between "not ready" and closing sockets
  LOG_LEVEL: 'info',
} as const

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const spec = {
  APP_ENV: str({ choices: ['development', 'production', 'test'], default: defaults.APP_ENV }),
  APP_HOST: str({ default: defaults.APP_HOST }),
  HTTP_PORT: listenPort({ default: undefined }),
  APP_PORT: listenPort({ default: undefined }),
  TRUST_PROXY: trustProxy({ default: parseTrustProxy(defaults.TRUST_PROXY) }),
  DATABASE_URL: url({ default: undefined }),
  DB_HOST: str({ default: undefined }),
  DB_PORT: port({ default: defaults.DB_PORT }),
  DB_USER: str({ default: defaults.DB_USER }),
  DB_PASSWORD: str({ default: undefined }),
  DB_DATABASE: str({ default: defaults.DB_DATABASE }),
  DB_SSLMODE: str({ choices: ['disable', 'allow', 'prefer', 'require', 'verify-full'], default: defaults.DB_SSLMODE }),
  DB_POOL_MAX: count({ default: defaults.DB_POOL_MAX }),
  DB_CONNECT_TIMEOUT: duration({ default: parseDuration(defaults.DB_CONNECT_TIMEOUT) }),
  DATA_DIR: str({ default: defaults.DATA_DIR }),
  REDIS_URL: url({ default: undefined }),
  // host:port seeds of a Redis Cluster: sharded pub/sub instead of REDIS_URL (SPEC §11)
  REDIS_CLUSTER_NODES: hostPorts({ default: undefined }),
  REDIS_KEY_PREFIX: prefix({ default: defaults.REDIS_KEY_PREFIX }),
  WS_BASE_URL: url({ default: undefined }),
  WS_MAX_MESSAGE_SIZE: size({ default: parseSize(defaults.WS_MAX_MESSAGE_SIZE) }),
  WS_PING_INTERVAL: duration({ default: parseDuration(defaults.WS_PING_INTERVAL) }),
  WS_OPERATOR_MAX_BUFFER: size({ default: parseSize(defaults.WS_OPERATOR_MAX_BUFFER) }),
  WS_OPERATOR_MAX_LAG: duration({ default: parseDuration(defaults.WS_OPERATOR_MAX_LAG) }),
  WS_OPERATOR_MAX_MESSAGE: size({ default: parseSize(defaults.WS_OPERATOR_MAX_MESSAGE) }),
  WS_MAX_CONNECTIONS: count({ default: defaults.WS_MAX_CONNECTIONS }),
  SESSION_MAX_OPERATORS: count({ default: defaults.SESSION_MAX_OPERATORS }),
  RELAY_CACHE_BUDGET: size({ default: parseSize(defaults.RELAY_CACHE_BUDGET) }),
  PRESENCE_TTL: duration({ default: parseDuration(defaults.PRESENCE_TTL) }),
  SESSION_IDLE_TTL: durationOrOff({ default: parseDuration(defaults.SESSION_IDLE_TTL) }),
  SESSION_RETENTION: durationOrOff({ default: parseDuration(defaults.SESSION_RETENTION) }),
  SESSION_SWEEP_INTERVAL: duration({ default: parseDuration(defaults.SESSION_SWEEP_INTERVAL) }),
  SHUTDOWN_DRAIN: durationOrOff({ default: parseDuration(defaults.SHUTDOWN_DRAIN) }),
  LOG_LEVEL: str({ choices: LOG_LEVELS, default: defaults.LOG_LEVEL }),
  LOG_FORMAT: str({ choices: ['json', 'pretty'], default: undefined }),
  // Access control (SPEC §9); the secrets are checked in auth.ts, which never quotes them.
  AUTH_MODE: str({ choices: ['open', 'token'], default: undefined }),
  API_KEYS: str({ default: undefined }),
  AUTH_JWT_SECRET: str({ default: undefined }),
  AUTH_JWT_PUBLIC_KEY: str({ default: undefined }),
  AUTH_JWT_PRIVATE_KEY: str({ default: undefined }),
  CORS_ORIGINS: str({ default: undefined }),
  // Webhooks (SPEC §12); the secret is checked in webhooks.ts, which never quotes it.
  WEBHOOK_URL: url({ default: undefined }),
  WEBHOOK_SECRET: str({ default: undefined }),
  WEBHOOK_TIMEOUT: duration({ default: parseDuration(defaults.WEBHOOK_TIMEOUT) }),
  WEBHOOK_CONCURRENCY: count({ default: defaults.WEBHOOK_CONCURRENCY }),
  WEBHOOK_POLL_INTERVAL: duration({ default: parseDuration(defaults.WEBHOOK_POLL_INTERVAL) }),
  WEBHOOK_RETRY_BACKOFF: duration({ default: parseDuration(defaults.WEBHOOK_RETRY_BACKOFF) }),
  WEBHOOK_RETRY_BACKOFF_MAX: duration({ default: parseDuration(defaults.WEBHOOK_RETRY_BACKOFF_MAX) }),
  WEBHOOK_RETRY_FOR: duration({ default: parseDuration(defaults.WEBHOOK_RETRY_FOR) }),
  WEBHOOK_ALLOWED_HOSTS: str({ default: undefined }),
  MIGRATIONS_DIR: str({ default: undefined }),
  SEEDS_DIR: str({ default: undefined }),
}

/** The names of every variable the service reads (for docs and the deploy checks). */
export const configKeys = Object.keys(spec)

type Env = Record<string, string | undefined>

/**
 * Validates the environment once into a frozen config. Every problem is
 * collected and thrown together as one ConfigInvalidError.
 */
export function loadConfig (env: Env): Readonly<Config> {
  const problems: string[] = []
  // envalid treats '' as set; an empty line in .env means "unset" to people.
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  // Problems echo the values given (and envalid's messages do too): never a URL's password.
  const urls = [input.DATABASE_URL, input.REDIS_URL, input.WEBHOOK_URL].flatMap((url) => url === undefined ? [] : [url, JSON.stringify(url).slice(1, -1)])
  const raw = cleanEnv(input, spec, {
    reporter: ({ errors }: ReporterOptions<typeof spec>) => {
      for (const [name, err] of Object.entries(errors)) {
        const value = input[name]
        const problem = value === undefined ? `${name}: ${(err as Error).message}` : `${name}=${JSON.stringify(value)}: ${(err as Error).message}`
        problems.push(redactCredentialsIn(problem, urls))
      }
    },
  })
  if (problems.length > 0) throw new ConfigInvalidError(problems)

  const embedded = raw.DB_HOST === undefined && raw.DATABASE_URL === undefined
  if (raw.APP_ENV === 'production') {
    if (embedded) problems.push('DB_HOST or DATABASE_URL: required in production (the embedded database is for development only)')
    if (raw.DB_PASSWORD === undefined && raw.DATABASE_URL === undefined) problems.push('DB_PASSWORD: required in production')
  }
  const auth = loadAuthConfig(raw, raw.APP_ENV as AppEnv, problems)
  const webhooks = loadWebhookConfig(raw, raw.APP_ENV as AppEnv, problems)
  if (raw.HTTP_PORT !== undefined && raw.APP_PORT !== undefined && raw.HTTP_PORT !== raw.APP_PORT) {
    problems.push(`HTTP_PORT=${raw.HTTP_PORT} and APP_PORT=${raw.APP_PORT} disagree: set only one`)
  }
  if (problems.length > 0) throw new ConfigInvalidError(problems)

  const config: Config = {
    appEnv: raw.APP_ENV as AppEnv,
    http: { host: raw.APP_HOST, port: raw.HTTP_PORT ?? raw.APP_PORT ?? defaults.HTTP_PORT },
    trustProxy: raw.TRUST_PROXY,
    auth,
    db: {
      embedded,
      url: raw.DATABASE_URL,
      host: raw.DB_HOST,
      port: raw.DB_PORT,
      user: raw.DB_USER,
      password: raw.DB_PASSWORD,
      database: raw.DB_DATABASE,
      sslmode: raw.DB_SSLMODE as SslMode,
      poolMax: raw.DB_POOL_MAX,
      connectTimeoutMs: raw.DB_CONNECT_TIMEOUT,
      dataDir: raw.DATA_DIR,
    },
    redis: { url: raw.REDIS_URL, clusterNodes: raw.REDIS_CLUSTER_NODES, keyPrefix: raw.REDIS_KEY_PREFIX },
    ws: {
      baseUrl: raw.WS_BASE_URL?.replace(/\/+$/, ''),
      maxMessageSize: raw.WS_MAX_MESSAGE_SIZE,
      pingIntervalMs: raw.WS_PING_INTERVAL,
      operatorMaxBuffer: raw.WS_OPERATOR_MAX_BUFFER,
      operatorMaxLagMs: raw.WS_OPERATOR_MAX_LAG,
      operatorMaxMessage: raw.WS_OPERATOR_MAX_MESSAGE,
      maxConnections: raw.WS_MAX_CONNECTIONS,
    },
    session: {
      maxOperators: raw.SESSION_MAX_OPERATORS,
      presenceTtlMs: raw.PRESENCE_TTL,
      idleTtlMs: raw.SESSION_IDLE_TTL,
      retentionMs: raw.SESSION_RETENTION,
      sweepIntervalMs: raw.SESSION_SWEEP_INTERVAL,
    },
    relay: { cacheBudget: raw.RELAY_CACHE_BUDGET },
    webhooks,
    shutdownDrainMs: raw.SHUTDOWN_DRAIN,
    logLevel: raw.LOG_LEVEL,
    logFormat: raw.LOG_FORMAT as LogFormat | undefined,
    migrationsDir: raw.MIGRATIONS_DIR,
    seedsDir: raw.SEEDS_DIR,
  }
  return deepFreeze(config)
}

function deepFreeze<T extends object> (value: T): Readonly<T> {
  for (const child of Object.values(value)) {
    if (child !== null && typeof child === 'object') deepFreeze(child)
  }
  return Object.freeze(value)
}
