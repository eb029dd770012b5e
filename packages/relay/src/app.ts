import type { FastifyInstance } from 'fastify'
import {
  createBaseApp, databaseCheck, type Backplane, type Config, type Logger, type Metrics, type Presence, type Readiness, type Sql,
} from '@streaming-service/core'
import { consolePlugin } from '@streaming-service/console'
import { Admission } from './admission.js'
import { Hub } from './hub.js'
import { CacheBudget } from './media/index.js'
import { createRelayMetrics } from './metrics.js'
import { relaySockets } from './sockets.js'

export interface RelayOptions {
  config: Readonly<Config>
  sql: Sql
  logger: Logger
  metrics: Metrics
  readiness: Readiness
  backplane: Backplane
  presence: Presence
}

export interface Relay {
  hub: Hub
  /** Registers the WebSocket route (and its lifecycle) on an app. */
  register (app: FastifyInstance): void
}

/** The relay's parts, for `buildRelay` and for `api`, which serves it beside the control plane. */
export function createRelay (options: RelayOptions): Relay {
  const { config, readiness, backplane } = options
  const metrics = createRelayMetrics(options.metrics.registry)
  const budget = new CacheBudget(config.relay.cacheBudget, {
    onEvict: (bytes) => { metrics.cacheEvictions.inc(); metrics.cacheEvictedBytes.inc(bytes) },
  })
  const hub = new Hub({ backplane, metrics, logger: options.logger.child({ component: 'hub' }), cache: { budget } })
  readiness.add('backplane', async () => { await backplane.ready() })
  return {
    hub,
    register (app) {
      app.register(consolePlugin)
      app.register(relaySockets, {
        hub,
        admission: new Admission(options.sql, { maxOperators: config.session.maxOperators }),
        presence: options.presence,
        readiness,
        metrics,
        maxMessageSize: config.ws.maxMessageSize,
        pingIntervalMs: config.ws.pingIntervalMs,
        operatorMaxBuffer: config.ws.operatorMaxBuffer,
        operatorMaxLagMs: config.ws.operatorMaxLagMs,
      })
    },
  }
}

/** A relay node as a Fastify app (WebSocket + /health, /ready, /metrics); the caller listens. */
export function buildRelay (options: RelayOptions): { app: FastifyInstance, hub: Hub } {
  const app = createBaseApp(options)
  options.readiness.add('database', databaseCheck(options.sql))
  const relay = createRelay(options)
  relay.register(app)
  return { app, hub: relay.hub }
}
