import fp from 'fastify-plugin'
import type { Config, Logger } from '@streaming-service/core'
import { allowConsoleOrigins } from './cors.js'
import { registerSessionMetrics } from './metrics.js'
import { startReconciler } from './reconciler.js'
import { sessionRoutes } from './routes/sessions.js'
import { startSweeper } from './sweeper.js'

/** What the control plane tells the relays; `serve` wires it to the backplane (or the local hub). */
export interface RelaySignals {
  /** Closes a finished session's sockets on every relay. */
  sessionFinished: (sessionId: string) => void
}

export interface ControlPlanePluginOptions {
  config: Readonly<Config>
  signals: RelaySignals
}

/**
 * The REST control plane of SPEC §3: session routes, the `sessions` gauge,
 * the reconciler of sessions whose publisher's relay died, the sweeper of
 * idle and expired sessions (SPEC §10). Needs core's
 * presence and session store plugins.
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
  app.addHook('onClose', async () => { stopReconciler(); await stopSweeper() })
  allowConsoleOrigins(app)
  await app.register(sessionRoutes, {
    sessions: app.sessions,
    presence: app.presence,
    onFinished: signals.sessionFinished,
    wsBaseUrl: config.ws.baseUrl,
  })
}, { name: 'ss-control-plane', fastify: '5.x', dependencies: ['ss-presence', 'ss-sessions'] })
