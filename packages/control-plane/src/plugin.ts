import fp from 'fastify-plugin'
import { OperatorTokens, WebhookOutbox, type Config, type Logger } from '@streaming-service/core'
import { requireApiKey } from './api-keys.js'
import { restCors } from './cors.js'
import { registerSessionMetrics } from './metrics.js'
import { startReconciler } from './reconciler.js'
import { operatorRoutes } from './routes/operators.js'
import { errorSchema } from './routes/schemas.js'
import { sessionListRoutes } from './routes/session-list.js'
import { sessionRoutes } from './routes/sessions.js'
import { startSweeper } from './sweeper.js'
import { startWebhookDelivery } from './webhooks/delivery.js'
import { createWebhookMetrics } from './webhooks/metrics.js'

/** What the control plane tells the relays; `serve` wires it to the backplane (or the local hub). */
export interface RelaySignals {
  /** Closes a finished session's sockets on every relay. */
  sessionFinished: (sessionId: string) => void
  /** Closes a revoked operator's sockets on every relay. */
  operatorRevoked: (sessionId: string, userId: string) => void
}

export interface ControlPlanePluginOptions {
  config: Readonly<Config>
  signals: RelaySignals
}

/**
 * The REST control plane of SPEC §3 and §9: session and operator routes
 * (behind API keys in `token` mode, with CORS), the `sessions` gauge, the
 * reconciler of sessions whose publisher's relay died, the sweeper of idle
 * and expired sessions (SPEC §10), the webhook sender and the session list
 * and event log routes (SPEC §12). Needs core's presence and store plugins.
 */
export const controlPlanePlugin = fp<ControlPlanePluginOptions>(async (app, { config, signals }) => {
  const log = app.log as Logger
  registerSessionMetrics(app.metrics.registry, app.sessions, log)
  const stopReconciler = startReconciler({
    sessions: app.sessions, presence: app.presence, intervalMs: config.session.presenceTtlMs, logger: log,
  })
  const stopSweeper = startSweeper({
    sessions: app.sessions,
    idleTtlMs: config.session.idleTtlMs,
    retentionMs: config.session.retentionMs,
    intervalMs: config.session.sweepIntervalMs,
    onFinished: signals.sessionFinished,
    logger: log,
  })
  const outbox = new WebhookOutbox(app.db.sql)
  const stopWebhooks = startWebhookDelivery({
    outbox, config: config.webhooks, metrics: createWebhookMetrics(app.metrics.registry, outbox, log), logger: log.child({ component: 'webhooks' }),
  })
  app.addHook('onClose', async () => { stopReconciler(); await stopSweeper(); await stopWebhooks() })

  const { jwt } = config.auth
  const tokens = jwt.secret === undefined && jwt.publicKey === undefined ? undefined : new OperatorTokens(jwt)
  app.addSchema(errorSchema)
  // The REST API's own context: its CORS and API-key hooks apply to its routes only.
  await app.register(async (rest) => {
    await restCors(rest, config.auth.corsOrigins)
    requireApiKey(rest, config.auth)
    await rest.register(sessionRoutes, {
      sessions: app.sessions, presence: app.presence, onFinished: signals.sessionFinished, wsBaseUrl: config.ws.baseUrl, webhooks: config.webhooks,
    })
    await rest.register(sessionListRoutes, { sql: app.db.sql, events: app.events, presence: app.presence, wsBaseUrl: config.ws.baseUrl })
    await rest.register(operatorRoutes, {
      sessions: app.sessions,
      operators: app.operators,
      presence: app.presence,
      tokens,
      onRevoked: signals.operatorRevoked,
      wsBaseUrl: config.ws.baseUrl,
    })
  })
}, { name: 'ss-control-plane', fastify: '5.x', dependencies: ['ss-presence', 'ss-sessions'] })
