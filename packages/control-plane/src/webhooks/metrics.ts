import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger, WebhookOutbox } from '@streaming-service/core'

export type AttemptResult = 'delivered' | 'retry' | 'failed' | 'skipped'

export interface WebhookMetrics {
  /** One per delivery attempt of an event (all its receivers), by outcome; `failed`: given up. */
  deliveries: Counter<'result'>
}

/**
 * `webhook_deliveries_total{result}` counts this process's attempts;
 * `webhook_queue_depth` and `webhook_oldest_pending_seconds` are read from
 * PostgreSQL at scrape time (the queue is shared by every control plane).
 */
export function createWebhookMetrics (registry: Registry, outbox: WebhookOutbox, log: Logger): WebhookMetrics {
  let stats: Promise<{ pending: number, oldestPendingSeconds: number } | undefined> | undefined
  // One query per scrape for both gauges.
  const read = async () => {
    stats ??= outbox.stats().catch((err: unknown) => {
      log.warn({ err }, 'could not read the webhook queue for /metrics')
      return undefined
    }).finally(() => setImmediate(() => { stats = undefined }))
    return await stats
  }
  new Gauge({ // eslint-disable-line no-new
    name: 'webhook_queue_depth',
    help: 'Session events waiting for webhook delivery (all control planes; from PostgreSQL at scrape time)',
    registers: [registry],
    async collect () {
      const value = await read()
      if (value !== undefined) this.set(value.pending)
    },
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'webhook_oldest_pending_seconds',
    help: 'Age of the oldest session event not yet delivered (0 when none)',
    registers: [registry],
    async collect () {
      const value = await read()
      if (value !== undefined) this.set(value.oldestPendingSeconds)
    },
  })
  const deliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts of session events by result: delivered, retry (refused, will retry), failed (given up), skipped (no receiver)',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  for (const result of ['delivered', 'retry', 'failed', 'skipped'] as const) deliveries.inc({ result }, 0)
  return { deliveries }
}
