import fp from 'fastify-plugin'
import { createBackplane, type MemoryBus } from './backplane/index.js'
import type { Config } from './config/index.js'
import { databaseCheck } from './database/checks.js'
import { openDatabase, type Database } from './database/connection.js'
import { createPresence } from './presence/index.js'
import { SessionEventLog } from './sessions/events.js'
import { OperatorStore } from './sessions/operator-store.js'
import { SessionStore } from './sessions/store.js'
import type { Logger } from './logger.js'
import './types.js'

/**
 * The shared resources of every role, one named plugin each: whoever opens a
 * resource decorates the app with it, registers its readiness check and closes
 * it in `onClose`. `onClose` hooks run in reverse registration order, so a
 * resource outlives every plugin registered after it that uses it.
 */

export interface ResourcePluginOptions {
  config: Readonly<Config>
}

/** Opens the configured database and closes it with the app; or uses the caller's `database` (tests), left open. */
export type DatabasePluginOptions = ResourcePluginOptions | { database: Database }

/** `app.db`: PostgreSQL, or the embedded database; readiness check `database`. */
export const databasePlugin = fp<DatabasePluginOptions>(async (app, options) => {
  const owned = 'config' in options
  const db = owned ? await openDatabase(options.config.db, app.log as Logger) : options.database
  app.decorate('db', db)
  app.readiness.add('database', databaseCheck(db.sql))
  if (owned) app.addHook('onClose', async () => { await db.close() })
}, { name: 'ss-database', fastify: '5.x' })

export interface NodePluginOptions extends ResourcePluginOptions {
  /** This process's node id (a UUID): the origin of its backplane frames and the owner of its presence entries. */
  nodeId: string
}

export interface BackplanePluginOptions extends NodePluginOptions {
  /** In-process only: the bus shared by several nodes of one process (tests). */
  bus?: MemoryBus
}

/** `app.backplane`: sharded pub/sub on Redis Cluster, Redis pub/sub, or in-process (see createBackplane); readiness check `backplane`. */
export const backplanePlugin = fp<BackplanePluginOptions>(async (app, { config, nodeId, bus }) => {
  const backplane = createBackplane({
    redisUrl: config.redis.url,
    ...(config.redis.clusterNodes === undefined ? {} : { clusterNodes: config.redis.clusterNodes }),
    keyPrefix: config.redis.keyPrefix,
    nodeId,
    logger: app.log as Logger,
    metrics: app.metrics.registry,
    ...(bus === undefined ? {} : { bus }),
  })
  app.decorate('backplane', backplane)
  app.readiness.add('backplane', async () => { await backplane.ready() })
  app.addHook('onClose', async () => { await backplane.close() })
}, { name: 'ss-backplane', fastify: '5.x' })

/** `app.presence`: who is connected, across nodes; entries are this node's. */
export const presencePlugin = fp<NodePluginOptions>(async (app, { config, nodeId }) => {
  const presence = createPresence({
    redisUrl: config.redis.url,
    ...(config.redis.clusterNodes === undefined ? {} : { clusterNodes: config.redis.clusterNodes }),
    keyPrefix: config.redis.keyPrefix,
    nodeId,
    logger: app.log as Logger,
    ttlMs: config.session.presenceTtlMs,
  })
  app.decorate('presence', presence)
  app.addHook('onClose', async () => { await presence.close() })
}, { name: 'ss-presence', fastify: '5.x' })

/** `app.sessions`, `app.operators`, `app.events`: the stores on `app.db` (nothing of their own to close). */
export const sessionStorePlugin = fp(async (app) => {
  app.decorate('sessions', new SessionStore(app.db.sql))
  app.decorate('operators', new OperatorStore(app.db.sql))
  app.decorate('events', new SessionEventLog(app.db.sql))
}, { name: 'ss-sessions', fastify: '5.x', dependencies: ['ss-database'] })
