import postgres, { type Options, type Sql } from 'postgres'
import type { DatabaseConfig } from '../config/index.js'
import type { Logger } from '../logger.js'
import type { EmbeddedServer } from './embedded.js'

export type { Sql }

/** Where the database is and how to open a connection to it. */
export interface DatabaseTarget {
  url?: string
  options: Options<Record<string, never>>
  /** For logs: never contains the password. */
  description: string
  /**
   * Set when the database takes exactly one connection (the embedded one):
   * its only client, which every user of the target borrows. Only
   * `Database.close` ends it.
   */
  soleClient?: Sql
}

/** A connection for one piece of work (migrations, a status read) and how to give it back. */
export interface BorrowedConnection {
  sql: Sql
  release (): Promise<void>
}

export interface Database {
  sql: Sql
  target: DatabaseTarget
  embedded: boolean
  close (): Promise<void>
}

/** Reconnect delay in seconds: postgres.js's jittered 3^n growth, capped at 2 s instead of 20 s. */
export function cappedBackoff (retries: number): number {
  return (0.5 + Math.random() / 2) * Math.min(3 ** retries / 100, 2)
}

function sslOption (mode: DatabaseConfig['sslmode']): Options<Record<string, never>>['ssl'] {
  return mode === 'disable' ? false : mode
}

export function externalTarget (config: DatabaseConfig): DatabaseTarget {
  const common = {
    connect_timeout: Math.ceil(config.connectTimeoutMs / 1000),
    backoff: cappedBackoff,
    onnotice: () => {},
    connection: { application_name: 'streaming-service' },
  }
  if (config.url !== undefined) {
    const parsed = new URL(config.url)
    return {
      url: config.url,
      options: common,
      description: `postgres://${parsed.username === '' ? '' : parsed.username + '@'}${parsed.host}${parsed.pathname}`,
    }
  }
  return {
    options: {
      ...common,
      host: config.host,
      port: config.port,
      user: config.user,
      password: config.password,
      database: config.database,
      ssl: sslOption(config.sslmode),
    },
    description: `postgres://${config.user}@${config.host}:${config.port}/${config.database}`,
  }
}

/** Opens a postgres.js client on a target; `max` defaults to the target's pool size. */
export function connect (target: DatabaseTarget, overrides: Options<Record<string, never>> = {}): Sql {
  if (target.soleClient !== undefined) {
    throw new Error(`${target.description} takes one connection, already open: use its soleClient (borrowConnection)`)
  }
  const options = { ...target.options, ...overrides }
  return target.url === undefined ? postgres(options) : postgres(target.url, options)
}

/** A connection of its own, or the target's sole client lent (released without closing it). */
export function borrowConnection (target: DatabaseTarget): BorrowedConnection {
  if (target.soleClient !== undefined) return { sql: target.soleClient, release: async () => {} }
  const sql = connect(target, { max: 1 })
  return { sql, release: async () => { await sql.end({ timeout: 5 }) } }
}

/**
 * The embedded PGlite is one backend session behind its socket server, and
 * the server interleaves the protocol messages of concurrent connections
 * (one's Parse/Bind/Execute between another's, one's statements inside
 * another's transaction): wrong rows, lost writes, crashed clients. One
 * connection is correct: postgres.js queues and pipelines on it, and a
 * transaction holds it while other queries wait. It is never recycled
 * (no idle timeout, no lifetime): the server has room for no second one.
 */
const EMBEDDED_POOL = { max: 1, max_lifetime: null }

/** Opens the configured database: PostgreSQL, or the embedded PGlite in DATA_DIR. */
export async function openDatabase (config: DatabaseConfig, log: Logger): Promise<Database> {
  let embedded: EmbeddedServer | undefined
  let target: DatabaseTarget
  let sql: Sql
  if (config.embedded) {
    // Loaded only when used: PGlite's WASM is heavy for every other process.
    const { startEmbedded } = await import('./embedded.js')
    embedded = await startEmbedded(config.dataDir)
    const options = {
      host: embedded.host,
      port: embedded.port,
      user: 'postgres',
      database: 'postgres',
      connect_timeout: Math.ceil(config.connectTimeoutMs / 1000),
      backoff: cappedBackoff,
      onnotice: () => {},
    }
    sql = connect({ options, description: '' }, EMBEDDED_POOL)
    target = { options, description: `embedded PGlite in ${embedded.dataDir}`, soleClient: sql }
  } else {
    target = externalTarget(config)
    sql = connect(target, { max: config.poolMax, idle_timeout: 60 })
  }
  log.info({ database: target.description, embedded: config.embedded }, `using database: ${target.description}`)
  return {
    sql,
    target,
    embedded: config.embedded,
    async close () {
      await sql.end({ timeout: 5 })
      await embedded?.close()
    },
  }
}
