import { Gauge, type Registry } from 'prom-client'
import type { Logger, SessionStore, SessionStatus } from '@streaming-service/core'

const STATUSES: SessionStatus[] = ['waiting', 'active', 'finished']

/**
 * `sessions{status}`, counted in PostgreSQL at scrape time. While the
 * database is down the last counts stay (a scrape never fails for it).
 */
export function registerSessionMetrics (registry: Registry, sessions: SessionStore, log: Logger): void {
  new Gauge({ // eslint-disable-line no-new
    name: 'sessions',
    help: 'Sessions by status (from PostgreSQL, at scrape time)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect () {
      try {
        const counts = await sessions.countByStatus()
        for (const status of STATUSES) this.set({ status }, counts[status] ?? 0)
      } catch (err) {
        log.warn({ err }, 'could not count sessions for /metrics')
      }
    },
  })
}
