import { setTimeout as delay } from 'node:timers/promises'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { controlPlanePlugin, type RelaySignals } from '@streaming-service/control-plane'
import {
  backplanePlugin, ConfigInvalidError, createBaseApp, createMetrics, databasePlugin, migrateUp, migrationsCheck, newNodeId, presencePlugin,
  Readiness, sessionStorePlugin, type Database, type Logger,
} from '@streaming-service/core'
import { announceFinished, announceRevoked, relayPlugin } from '@streaming-service/relay'
import { consoleUrl } from '../console-url.js'
import { createContext, type Context } from '../context.js'
import type { Env } from '../env.js'

export type ServerRole = 'api' | 'control-plane' | 'relay'

export interface RunningServer {
  app: FastifyInstance
  /** e.g. http://127.0.0.1:8090 */
  url: string
  /** Not ready at once, then after SHUTDOWN_DRAIN closes sockets (going away), stops serving and closes connections. */
  shutdown (): Promise<void>
}

/** How long a starting node waits for its backplane before listening anyway (not ready until it connects). */
const BACKPLANE_WAIT_MS = 3000

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

/** Whether `promise` resolved within `ms` (it rejects if it rejected by then). Leaves no timer behind. */
async function settledWithin (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise.then(() => true), new Promise<boolean>((resolve) => { timer = setTimeout(resolve, ms, false) })])
  } finally {
    clearTimeout(timer)
  }
}

function checkRole (role: ServerRole, context: Context): void {
  const { config } = context
  const problems: string[] = []
  if (role !== 'api' && config.db.embedded) problems.push(`DB_HOST or DATABASE_URL: required for "${role}" (the embedded database serves only "api")`)
  if (role !== 'api' && config.redis.url === undefined && config.redis.clusterNodes === undefined) {
    problems.push(`REDIS_URL: required for "${role}" (split roles share the Redis backplane; or REDIS_CLUSTER_NODES for a Redis Cluster)`)
  }
  if (problems.length > 0) throw new ConfigInvalidError(problems)
}

/**
 * `api` (control plane + relay in one process), `control-plane` or `relay`:
 * compose the role's plugins on the base app (migrating first, except
 * relays), listen. The caller owns signals. Closing the app closes everything
 * the plugins opened.
 */
export async function serve (role: ServerRole, env: Env): Promise<RunningServer> {
  const context = createContext(env, 'streaming-service')
  checkRole(role, context)
  const { config } = context
  const log = context.logger.child({ role })
  const app = createBaseApp({ logger: log, metrics: createMetrics(role), readiness: new Readiness(), trustProxy: config.trustProxy })
  let stopping = false
  let closing: Promise<void> | undefined
  const shutdown = async (): Promise<void> => {
    closing ??= (async () => {
      stopping = true
      app.readiness.startDraining()
      log.info({ drainMs: config.shutdownDrainMs }, 'draining: not ready, closing after the drain period')
      await delay(config.shutdownDrainMs)
      await app.close()
      log.info('stopped')
    })()
    await closing
  }

  try {
    await app.register(databasePlugin, { config })
    app.readiness.add('migrations', migrationsCheck(app.db.sql, context.migrationsDir))
    // Connecting to the backplane goes on while migrations run.
    const nodeId = newNodeId()
    await app.register(backplanePlugin, { config, nodeId })
    await app.register(presencePlugin, { config, nodeId })
    if (role !== 'relay') {
      const migrations = migrateUntilApplied(app.db, context, log, () => stopping)
      // Wait for the first attempt's outcome when it is quick (the usual case),
      // so a started node is ready at once; keep serving if it is not.
      const settled = await settledWithin(migrations, 10_000)
      if (!settled) {
        migrations.catch((err: unknown) => {
          log.fatal({ err }, 'migrations failed')
          process.exitCode = 1
          void shutdown()
        })
      }
    }
    await app.register(sessionStorePlugin)
    if (role !== 'relay') {
      // In one process the relay is local too: a node never receives its own publications.
      const signals: RelaySignals = role === 'api'
        ? { sessionFinished: (id) => app.hub.finishSession(id), operatorRevoked: (id, userId) => app.hub.revokeOperator(id, userId) }
        : { sessionFinished: (id) => { announceFinished(app.backplane, id) }, operatorRevoked: (id, userId) => { announceRevoked(app.backplane, id, userId) } }
      await app.register(controlPlanePlugin, { config, signals })
    }
    if (role !== 'control-plane') await app.register(relayPlugin, { config })
    // A node that can be ready in a moment is ready when it says "listening".
    await settledWithin(app.backplane.ready().catch(() => {}), BACKPLANE_WAIT_MS)
    await app.listen({ host: config.http.host, port: config.http.port })
  } catch (err) {
    await app.close()
    throw err
  }

  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  log.info({ address: address.address, port: address.port, role, nodeId: app.backplane.nodeId, backplane: app.backplane.kind }, 'listening')
  if (role !== 'control-plane') log.info(`console: ${consoleUrl(address)}`) // relays serve it
  return { app, url: `http://${host}:${address.port}`, shutdown }
}
