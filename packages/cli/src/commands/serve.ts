import { setTimeout as delay } from 'node:timers/promises'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { registerControlPlane } from '@streaming-service/control-plane'
import {
  announceFinished, ConfigInvalidError, createBackplane, createBaseApp, createMetrics, createPresence, databaseCheck,
  migrateUp, migrationsCheck, openDatabase, Readiness, type Database, type Logger,
} from '@streaming-service/core'
import { createRelay } from '@streaming-service/relay'
import { consoleUrl } from '../console-url.js'
import { createContext, type Context } from '../context.js'
import type { Env } from '../env.js'

export type ServerRole = 'api' | 'control-plane' | 'relay'

export interface RunningServer {
  app: FastifyInstance
  /** e.g. http://127.0.0.1:8090 */
  url: string
  /** Not ready at once, then after SHUTDOWN_DRAIN closes sockets (1001), stops serving and closes connections. */
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

function checkRole (role: ServerRole, context: Context): void {
  const { config } = context
  const problems: string[] = []
  if (role !== 'api' && config.db.embedded) problems.push(`DB_HOST or DATABASE_URL: required for "${role}" (the embedded database serves only "api")`)
  if (role !== 'api' && config.redis.url === undefined) problems.push(`REDIS_URL: required for "${role}" (split roles share the Redis backplane)`)
  if (problems.length > 0) throw new ConfigInvalidError(problems)
}

/**
 * `api` (control plane + relay in one process), `control-plane` or `relay`:
 * migrate (not relays), build the app, listen. The caller owns signals.
 */
export async function serve (role: ServerRole, env: Env): Promise<RunningServer> {
  const context = createContext(env, 'streaming-service')
  checkRole(role, context)
  const { config } = context
  const log = context.logger.child({ role })
  const db = await openDatabase(config.db, log)
  const metrics = createMetrics(role)
  const readiness = new Readiness()
  readiness.add('database', databaseCheck(db.sql))
  readiness.add('migrations', migrationsCheck(db.sql, context.migrationsDir))
  const backplane = createBackplane({ redisUrl: config.redis.url, keyPrefix: config.redis.keyPrefix, logger: log, metrics: metrics.registry })
  const presence = createPresence({
    redisUrl: config.redis.url, keyPrefix: config.redis.keyPrefix, nodeId: backplane.nodeId, logger: log, ttlMs: config.session.presenceTtlMs,
  })
  const closeAll = async () => {
    await backplane.close()
    await presence.close()
    await db.close()
  }

  let stopping = false
  if (role !== 'relay') {
    const migrations = migrateUntilApplied(db, context, log, () => stopping)
    // Wait for the first attempt's outcome when it is quick (the usual case),
    // so a started node is ready at once; keep serving if it is not.
    const settled = await Promise.race([migrations.then(() => true), delay(10_000).then(() => false)])
      .catch(async (err: unknown) => { await closeAll(); throw err })
    if (!settled) {
      migrations.catch((err: unknown) => {
        log.fatal({ err }, 'migrations failed')
        process.exitCode = 1
        void running.shutdown()
      })
    }
  }

  const app = createBaseApp({ logger: log, metrics, readiness })
  const relay = role === 'control-plane' ? undefined : createRelay({ config, sql: db.sql, logger: log, metrics, readiness, backplane, presence })
  if (role === 'control-plane') readiness.add('backplane', async () => { await backplane.ready() })
  if (role !== 'relay') {
    registerControlPlane(app, {
      config,
      sql: db.sql,
      logger: log,
      metrics,
      readiness,
      presence,
      // In one process the relay is local too: a node never receives its own publications.
      onSessionFinished: relay === undefined ? (id) => { announceFinished(backplane, id) } : (id) => relay.hub.finishSession(id),
    })
  }
  relay?.register(app)

  await app.listen({ host: config.http.host, port: config.http.port })
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  log.info({ address: address.address, port: address.port, role, nodeId: backplane.nodeId, backplane: backplane.kind }, 'listening')
  if (relay !== undefined) log.info(`console: ${consoleUrl(address)}`) // the relay serves it

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
        await closeAll()
        log.info('stopped')
      })()
      return closing
    },
  }
  return running
}
