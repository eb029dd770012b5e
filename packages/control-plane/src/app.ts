import type { FastifyInstance } from 'fastify'
import {
  createBaseApp, SessionStore, type Config, type Logger, type Metrics, type Presence, type Readiness, type Sql,
} from '@streaming-service/core'
import { allowConsoleOrigins } from './cors.js'
import { registerSessionMetrics } from './metrics.js'
import { startReconciler } from './reconciler.js'
import { sessionRoutes } from './routes/sessions.js'

export interface ControlPlaneOptions {
  config: Readonly<Config>
  sql: Sql
  logger: Logger
  metrics: Metrics
  readiness: Readiness
  presence: Presence
  /** Closes a finished session's sockets on every relay. */
  onSessionFinished: (sessionId: string) => void
}

/** The control plane's routes, for `buildControlPlane` and for `api`, which serves them beside the relay. */
export function registerControlPlane (app: FastifyInstance, options: ControlPlaneOptions): void {
  const sessions = new SessionStore(options.sql)
  registerSessionMetrics(options.metrics.registry, sessions, options.logger)
  const stopReconciler = startReconciler({
    sessions, presence: options.presence, intervalMs: options.config.session.presenceTtlMs, logger: options.logger,
  })
  app.addHook('onClose', async () => stopReconciler())
  allowConsoleOrigins(app)
  app.register(sessionRoutes, {
    sessions,
    presence: options.presence,
    onFinished: options.onSessionFinished,
    wsBaseUrl: options.config.ws.baseUrl,
  })
}

/** The REST control plane of SPEC §3 as a Fastify app; the caller listens. */
export function buildControlPlane (options: ControlPlaneOptions): FastifyInstance {
  const app = createBaseApp({ ...options, trustProxy: options.config.trustProxy })
  registerControlPlane(app, options)
  return app
}
