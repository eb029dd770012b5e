import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { controlPlanePlugin } from '@streaming-service/control-plane'
import {
  connect, createBaseApp, createLogger, createMetrics, databasePlugin, externalTarget, findDir, loadConfig, migrateUp,
  migrationsCheck, openDatabase, presencePlugin, Readiness, sessionStorePlugin, type Database, type Presence, type Sql,
} from '@streaming-service/core'
import { createTestDatabase } from '@streaming-service/testing'

interface Teardown { teardown (fn: () => unknown): void }

export const migrationsDir = findDir('migrations')

/** One database per test file, shared by that file's tests. */
export interface Backend {
  kind: 'postgres' | 'embedded'
  database: Database
}

export interface AppOptions {
  /** Extra environment for loadConfig (e.g. WS_BASE_URL). */
  env?: Record<string, string>
  /** Collects every log line (JSON text) at level info; silent otherwise. */
  logs?: string[]
  /** Another database than the backend's, e.g. one on a dead server. */
  database?: Database
}

export interface TestApp {
  app: FastifyInstance
  /** The backend's own client, for looking at or arranging rows directly. */
  sql: Sql
  readiness: Readiness
  /** In-process presence, to put publishers and operators online. */
  presence: Presence
  /** Session ids the control plane announced as finished (to close their sockets everywhere). */
  finished: string[]
  inject (options: InjectOptions): Promise<LightMyRequestResponse>
}

/** Builds an in-process control plane on the file's database; closed at `t`'s teardown. */
export type MakeApp = (t: Teardown, options?: AppOptions) => Promise<TestApp>

/** A fresh PostgreSQL database for the file (dropped at the end), migrated. */
async function postgresBackend (root: Teardown): Promise<Backend> {
  const db = await createTestDatabase(root, 'control_plane')
  const target = externalTarget(loadConfig({ APP_ENV: 'test', ...db.env }).db)
  await migrateUp(target, migrationsDir)
  const database = borrowed(connect(target, { max: 5 }), target)
  root.teardown(async () => { await database.sql.end({ timeout: 5 }) })
  return { kind: 'postgres', database }
}

/** The embedded PGlite in a temporary DATA_DIR, migrated; removed at the end. */
async function embeddedBackend (root: Teardown): Promise<Backend> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ss-cp-embedded-'))
  const db = await openDatabase({ ...loadConfig({ APP_ENV: 'test', DATA_DIR: dataDir }).db }, createLogger('silent', 'test'))
  root.teardown(async () => {
    await db.close()
    await rm(dataDir, { recursive: true, force: true })
  })
  await migrateUp(db.target, migrationsDir)
  return { kind: 'embedded', database: db }
}

/**
 * The app factory of one test file. The database is opened on first use (so a
 * failure to open it is reported by a test) and shared by the file's tests.
 */
export function testApps (root: Teardown, kind: Backend['kind']): MakeApp {
  let backend: Promise<Backend> | undefined
  return async (t, options = {}) => {
    backend ??= kind === 'postgres' ? postgresBackend(root) : embeddedBackend(root)
    const { database } = await backend
    const sql = database.sql
    const config = loadConfig({ APP_ENV: 'test', ...options.env })
    const logs = options.logs
    const logger = logs === undefined
      ? createLogger('silent', 'test')
      : createLogger('info', 'test', { write (line: string) { logs.push(line) } })
    // As `serve` wires it: the database answers and the migrations are applied.
    const readiness = new Readiness()
    const finished: string[] = []
    const revoked: Array<{ id: string, userId: string }> = []
    const app = createBaseApp({ logger, metrics: createMetrics('control-plane'), readiness, trustProxy: config.trustProxy })
    t.teardown(async () => { await app.close() })
    const appDatabase = options.database ?? database
    await app.register(databasePlugin, { database: appDatabase })
    readiness.add('migrations', migrationsCheck(appDatabase.sql, migrationsDir))
    await app.register(presencePlugin, { config, nodeId: randomUUID() })
    await app.register(sessionStorePlugin)
    await app.register(controlPlanePlugin, { config, signals: { sessionFinished: (id) => finished.push(id), operatorRevoked: (id, userId) => revoked.push({ id, userId }) } })
    await app.ready()
    const presence: Presence = app.presence
    return { app, sql, readiness, presence, finished, inject: async (request) => await app.inject(request) }
  }
}

/** A port nothing listens on: bound by us, then closed. */
export async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  await new Promise<void>((resolve, reject) => server.close((err) => (err === undefined ? resolve() : reject(err))))
  return port
}

/** A database on a PostgreSQL server that is not there; its client is ended at `t`'s teardown. */
export async function unreachableDatabase (t: Teardown): Promise<Database> {
  const port = await closedPort()
  const config = loadConfig({ APP_ENV: 'test', DB_HOST: '127.0.0.1', DB_PORT: String(port), DB_CONNECT_TIMEOUT: '2s' })
  const target = externalTarget(config.db)
  const database = borrowed(connect(target, { max: 2 }), target)
  t.teardown(async () => { await database.sql.end({ timeout: 1 }) })
  return database
}

/** A client the test owns, as a Database the app uses without closing it. */
function borrowed (sql: Sql, target: Database['target']): Database {
  return { sql, target, embedded: false, async close () {} }
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T> (check: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
