import type { FastifyInstance } from 'fastify'
import { createBaseApp, SessionStore, type Config, type Logger, type Metrics, type Readiness, type Sql } from '@streaming-service/core'
import { sessionRoutes } from './routes/sessions.js'

export interface ControlPlaneOptions {
  config: Readonly<Config>
  sql: Sql
  logger: Logger
  metrics: Metrics
  readiness: Readiness
}

/** The REST control plane of SPEC §3 as a Fastify app; the caller listens. */
export function buildControlPlane (options: ControlPlaneOptions): FastifyInstance {
  const app = createBaseApp(options)
  app.register(sessionRoutes, {
    sessions: new SessionStore(options.sql),
    wsBaseUrl: options.config.ws.baseUrl,
  })
  return app
}
