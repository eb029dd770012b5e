import { cleanEnv, makeValidator, port, str, url, type ReporterOptions } from 'envalid'
import { ConfigInvalidError } from './errors.js'

/**
 * Environment variables read by the service, with their defaults. SPEC §6 is
 * the contract; `.env.example` lists every one of them.
 */
export const defaults = {
  APP_ENV: 'development',
  APP_HOST: '0.0.0.0',
  HTTP_PORT: 8090,
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
  WS_OPERATOR_MAX_LAG: '5s', // how long an operator may stay over that bound before 4429
  SESSION_MAX_OPERATORS: 10,
  // Bytes all late-join caches of one relay may hold together: ~64 sessions at
  // 1 MB each (a 2 s group at 4 Mbit/s), a quarter of a relay's 256 MiB memory request.
  RELAY_CACHE_BUDGET: '64MB',
  PRESENCE_TTL: '15s', // a dead relay's connections stop counting as online after this
  SHUTDOWN_DRAIN: '5s', // time between "not ready" and closing sockets
  LOG_LEVEL: 'info',
} as const

export type AppEnv = 'development' | 'production' | 'test'
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-full'

export interface DatabaseConfig {
  /** No DB_HOST and no DATABASE_URL: PGlite in `dataDir`, served over a loopback socket. */
  embedded: boolean
  url?: string
  host?: string
  port: number
  user: string
  password?: string
  database: string
  sslmode: SslMode
  poolMax: number
  connectTimeoutMs: number
  dataDir: string
}

export interface Config {
  appEnv: AppEnv
  http: { host: string; port: number }
  db: DatabaseConfig
  redis: { url?: string; keyPrefix: string }
  ws: { baseUrl?: string; maxMessageSize: number; pingIntervalMs: number; operatorMaxBuffer: number; operatorMaxLagMs: number }
  session: { maxOperators: number, presenceTtlMs: number }
  relay: { cacheBudget: number }
  shutdownDrainMs: number
  logLevel: string
  /** Override of the directories found next to the installed package. */
  migrationsDir?: string
  seedsDir?: string
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3,
}
const DURATION_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

function parseWithUnits (input: string, units: Record<string, number>, what: string, example: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input)
  const factor = match ? units[match[2]!.toLowerCase()] : undefined
  if (!match || factor === undefined) {
    throw new Error(`"${input}" is not a ${what} (e.g. ${example})`)
  }
  return Math.round(Number(match[1]) * factor)
}

/** `10MB`, `64KB`, `512 B` or a plain number of bytes. */
export function parseSize (input: string): number {
  return parseWithUnits(input, SIZE_UNITS, 'size', '10MB, 64KB or 1048576')
}

/** `20s`, `500ms`, `1m` or a plain number of milliseconds. */
export function parseDuration (input: string): number {
  return parseWithUnits(input, DURATION_UNITS, 'duration', '20s, 500ms or 20000')
}

const positive = (parse: (input: string) => number) => makeValidator<number>((input) => {
  const value = parse(input)
  if (value <= 0) throw new Error(`"${input}" must be greater than zero`)
  return value
})
const size = positive(parseSize)
const duration = positive(parseDuration)
const count = makeValidator<number>((input) => {
  if (!/^\s*\d+\s*$/.test(input) || Number(input) < 1) throw new Error(`"${input}" is not a whole number >= 1`)
  return Number(input)
})
/** A TCP port; 0 asks the OS for a free one (tests, side-cars). */
const listenPort = makeValidator<number>((input) => {
  const value = Number(input)
  if (!/^\s*\d+\s*$/.test(input) || value > 65535) throw new Error(`"${input}" is not a port (0-65535)`)
  return value
})
const prefix = makeValidator<string>((input) => {
  if (/\s/.test(input)) throw new Error('must not contain white space')
  return input
})

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const spec = {
  APP_ENV: str({ choices: ['development', 'production', 'test'], default: defaults.APP_ENV }),
  APP_HOST: str({ default: defaults.APP_HOST }),
  HTTP_PORT: listenPort({ default: undefined }),
  APP_PORT: listenPort({ default: undefined }),
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
  REDIS_KEY_PREFIX: prefix({ default: defaults.REDIS_KEY_PREFIX }),
  WS_BASE_URL: url({ default: undefined }),
  WS_MAX_MESSAGE_SIZE: size({ default: parseSize(defaults.WS_MAX_MESSAGE_SIZE) }),
  WS_PING_INTERVAL: duration({ default: parseDuration(defaults.WS_PING_INTERVAL) }),
  WS_OPERATOR_MAX_BUFFER: size({ default: parseSize(defaults.WS_OPERATOR_MAX_BUFFER) }),
  WS_OPERATOR_MAX_LAG: duration({ default: parseDuration(defaults.WS_OPERATOR_MAX_LAG) }),
  SESSION_MAX_OPERATORS: count({ default: defaults.SESSION_MAX_OPERATORS }),
  RELAY_CACHE_BUDGET: size({ default: parseSize(defaults.RELAY_CACHE_BUDGET) }),
  PRESENCE_TTL: duration({ default: parseDuration(defaults.PRESENCE_TTL) }),
  SHUTDOWN_DRAIN: makeValidator<number>(parseDuration)({ default: parseDuration(defaults.SHUTDOWN_DRAIN) }),
  LOG_LEVEL: str({ choices: LOG_LEVELS, default: defaults.LOG_LEVEL }),
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
  const raw = cleanEnv(input, spec, {
    reporter: ({ errors }: ReporterOptions<typeof spec>) => {
      for (const [name, err] of Object.entries(errors)) {
        const value = input[name]
        problems.push(value === undefined ? `${name}: ${(err as Error).message}` : `${name}=${JSON.stringify(value)}: ${(err as Error).message}`)
      }
    },
  })
  if (problems.length > 0) throw new ConfigInvalidError(problems)

  const embedded = raw.DB_HOST === undefined && raw.DATABASE_URL === undefined
  if (raw.APP_ENV === 'production') {
    if (embedded) problems.push('DB_HOST or DATABASE_URL: required in production (the embedded database is for development only)')
    if (raw.DB_PASSWORD === undefined && raw.DATABASE_URL === undefined) problems.push('DB_PASSWORD: required in production')
  }
  if (raw.HTTP_PORT !== undefined && raw.APP_PORT !== undefined && raw.HTTP_PORT !== raw.APP_PORT) {
    problems.push(`HTTP_PORT=${raw.HTTP_PORT} and APP_PORT=${raw.APP_PORT} disagree: set only one`)
  }
  if (problems.length > 0) throw new ConfigInvalidError(problems)

  const config: Config = {
    appEnv: raw.APP_ENV as AppEnv,
    http: { host: raw.APP_HOST, port: raw.HTTP_PORT ?? raw.APP_PORT ?? defaults.HTTP_PORT },
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
    redis: { url: raw.REDIS_URL, keyPrefix: raw.REDIS_KEY_PREFIX },
    ws: {
      baseUrl: raw.WS_BASE_URL?.replace(/\/+$/, ''),
      maxMessageSize: raw.WS_MAX_MESSAGE_SIZE,
      pingIntervalMs: raw.WS_PING_INTERVAL,
      operatorMaxBuffer: raw.WS_OPERATOR_MAX_BUFFER,
      operatorMaxLagMs: raw.WS_OPERATOR_MAX_LAG,
    },
    session: { maxOperators: raw.SESSION_MAX_OPERATORS, presenceTtlMs: raw.PRESENCE_TTL },
    relay: { cacheBudget: raw.RELAY_CACHE_BUDGET },
    shutdownDrainMs: raw.SHUTDOWN_DRAIN,
    logLevel: raw.LOG_LEVEL,
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
