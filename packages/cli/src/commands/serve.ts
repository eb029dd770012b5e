import { setTimeout as delay } from 'node:timers/promises'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildControlPlane } from '@streaming-service/control-plane'
import {
  ConfigInvalidError, createMetrics, databaseCheck, migrateUp, migrationsCheck, openDatabase, Readiness,
  type Database, type Logger,
} from '@streaming-service/core'
import { createContext, type Context } from '../context.js'
import type { Env } from '../env.js'

export type ServerRole = 'api' | 'control-plane'

export interface RunningServer {
  app: FastifyInstance
  /** e.g. http://127.0.0.1:8090 */
  url: string
  /** Not ready at once, then after SHUTDOWN_DRAIN stops serving and closes the database. */
  shutdown (): Promise<void>
}

const isUnavailable = (err: unknown) => (err as { code?: string }).code === 'SS_DB_UNAVAILABLE'

/**
 * Applies migrations at start. A database that cannot be reached yet is not
 * fatal: the node serves (not ready) and keeps trying, so it recovers when
 * the database comes back. Any other migration failure is.
 */
async function migrateUntilApplied (db: Database, context: Context, log: Logger, stopped: () => boolean): Promise<void> {
  for (let attempt = 0; !stopped(); attempt++) {
    try {
      const applied = await migrateUp(db.target, context.migrationsDir)
      log.info({ applied }, applied.length === 0 ? 'migrations up to date' : `applied ${applied.length} migration(s)`)
      return
    } catch (err) {
      if (!isUnavailable(err)) throw err
      if (attempt === 0) log.warn({ err }, 'database unreachable at start; serving as not ready and retrying migrations')
      await delay(Math.min(250 * 2 ** attempt, 5000))
    }
  }
}

/** `api` / `control-plane`: migrate, build the app, listen. The caller owns signals. */
export async function serve (role: ServerRole, env: Env): Promise<RunningServer> {
  const context = createContext(env, 'streaming-service')
  const { config } = context
  if (role !== 'api' && config.db.embedded) {
    throw new ConfigInvalidError([`DB_HOST or DATABASE_URL: required for "${role}" (the embedded database serves only "api")`])
  }
  const log = context.logger.child({ role })
  const db = await openDatabase(config.db, log)
  const readiness = new Readiness()
  readiness.add('database', databaseCheck(db.sql))
  readiness.add('migrations', migrationsCheck(db.sql, context.migrationsDir))

  let stopping = false
  const migrations = migrateUntilApplied(db, context, log, () => stopping)
  // Wait for the first attempt's outcome when it is quick (the usual case),
  // so a started node is ready at once; keep serving if it is not.
  const settled = await Promise.race([migrations.then(() => true), delay(10_000).then(() => false)])
    .catch(async (err) => { await db.close(); throw err })
  if (!settled) {
    migrations.catch((err) => {
      log.fatal({ err }, 'migrations failed')
      process.exitCode = 1
      void running.shutdown()
    })
  }

  const app = buildControlPlane({ config, sql: db.sql, logger: log, metrics: createMetrics(role), readiness })
  await app.listen({ host: config.http.host, port: config.http.port })
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  log.info({ address: address.address, port: address.port, role }, 'listening')

  let closing: Promise<void> | undefined
  const running: RunningServer = {
    app,
    url: `http://${host}:${address.port}`,
    shutdown () {
      closing ??= (async () => {
        stopping = true
        readiness.startDraining()
        log.info({ drainMs: config.shutdownDrainMs }, 'draining: not ready, closing after the drain period')
        await delay(config.shutdownDrainMs)
        await app.close()
        await db.close()
        log.info('stopped')
      })()
      return closing
    },
  }
  return running
}
