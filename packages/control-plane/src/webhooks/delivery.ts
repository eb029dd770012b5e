import type { Logger, LeasedEvent, WebhookConfig, WebhookOutbox } from '@streaming-service/core'
import type { SessionEventPayload } from '@streaming-service/protocol'
import type { WebhookMetrics } from './metrics.js'
import { webhookHeaders } from './sign.js'

export interface WebhookDeliveryOptions {
  outbox: WebhookOutbox
  config: WebhookConfig
  metrics: WebhookMetrics
  logger: Logger
}

/** The payload of SPEC §12: what is posted and what `GET /sessions/:id/events` shows. */
export function eventPayload (event: Pick<LeasedEvent, 'id' | 'type' | 'sessionId' | 'occurredAt' | 'data'>): SessionEventPayload {
  return { id: event.id, type: event.type, session_id: event.sessionId, occurred_at: event.occurredAt.toISOString(), data: event.data }
}

/** Exponential backoff with jitter: base·2^(attempt-1), capped, then scaled by 0.5–1. */
export function retryDelay (attempt: number, baseMs: number, maxMs: number, random = Math.random()): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(exponential * (0.5 + random / 2))
}

/** One POST; resolves to undefined on a 2xx, else to what went wrong. `closing` aborts it at shutdown. */
async function post (url: string, body: string, headers: Record<string, string>, timeoutMs: number, closing: AbortSignal): Promise<string | undefined> {
  try {
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), closing])
    const res = await fetch(url, { method: 'POST', body, headers, redirect: 'manual', signal })
    await res.arrayBuffer().catch(() => {})
    return res.ok ? undefined : `${new URL(url).host} answered ${res.status}`
  } catch (err) {
    const reason = closing.aborted
      ? 'the control plane shut down mid-request'
      : (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : String((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message)
    return `${new URL(url).host}: ${reason}`
  }
}

/**
 * The control plane's webhook sender (SPEC §12). Every WEBHOOK_POLL_INTERVAL,
 * and at once whenever an attempt ends (so a session's next event follows
 * its previous one without waiting for the interval), it leases as many due
 * events as it has free slots (WEBHOOK_CONCURRENCY) and posts each to
 * WEBHOOK_URL and the session's webhook_url. Nothing here is on the stream
 * or admission path: relays only insert events.
 */
export function startWebhookDelivery (options: WebhookDeliveryOptions): () => Promise<void> {
  const { outbox, config, metrics, logger } = options
  // Long enough for every receiver's timeout; a holder that dies frees its events after this.
  const leaseMs = config.timeoutMs * 2 + 5000
  const inFlight = new Set<Promise<void>>()
  // Shutdown does not wait for slow receivers: their attempts end as refused and are retried.
  const closing = new AbortController()
  let stopped = false
  let leasing = false
  let again = false
  let lastLeaseError = 0

  const deliver = async (event: LeasedEvent): Promise<void> => {
    const receivers = [...new Set([config.url, event.webhookUrl].filter((url): url is string => url !== undefined && url !== null))]
    if (receivers.length === 0 || config.secret === undefined) {
      await outbox.settle(event, { result: 'skipped' })
      metrics.deliveries.inc({ result: 'skipped' })
      return
    }
    const body = JSON.stringify(eventPayload(event))
    const headers = webhookHeaders(config.secret, event.id, body)
    const owed = receivers.filter((url) => !event.deliveredTo.includes(url))
    const errors = await Promise.all(owed.map(async (url) => await post(url, body, headers, config.timeoutMs, closing.signal)))
    const deliveredTo = [...event.deliveredTo, ...owed.filter((_, i) => errors[i] === undefined)]
    const problems = errors.filter((error): error is string => error !== undefined)
    const log = { eventId: event.id, sessionId: event.sessionId, type: event.type, attempts: event.attempts }
    if (problems.length === 0) {
      const state = await outbox.settle(event, { result: 'delivered', deliveredTo })
      if (state !== undefined) metrics.deliveries.inc({ result: 'delivered' })
      return
    }
    const error = problems.join('; ')
    const retryInMs = retryDelay(event.attempts, config.backoffMs, config.backoffMaxMs)
    const state = await outbox.settle(event, { result: 'refused', deliveredTo, error, retryInMs, retryForMs: config.retryForMs })
    if (state === 'failed') {
      metrics.deliveries.inc({ result: 'failed' })
      logger.error({ ...log, error, retryForMs: config.retryForMs }, 'webhook given up: refused for WEBHOOK_RETRY_FOR')
    } else if (state !== undefined) {
      metrics.deliveries.inc({ result: 'retry' })
      logger.warn({ ...log, error, retryInMs }, 'webhook refused; retrying')
    }
  }

  const lease = async (): Promise<void> => {
    if (leasing) { again = true; return }
    leasing = true
    try {
      do {
        again = false
        const free = config.concurrency - inFlight.size
        if (stopped || free <= 0) break
        const events = await outbox.lease(free, leaseMs)
        for (const event of events) {
          const attempt: Promise<void> = deliver(event)
            .catch((err: unknown) => { logger.warn({ err, eventId: event.id }, 'webhook attempt not recorded; its lease will run out and it is retried') })
            .finally(() => { inFlight.delete(attempt); if (!stopped) void lease() })
          inFlight.add(attempt)
        }
        if (events.length === free) again = true
      } while (again)
    } catch (err) {
      // A database outage: say so once a minute, keep polling.
      if (Date.now() - lastLeaseError > 60_000) logger.warn({ err }, 'could not lease webhook events; retrying every poll interval')
      lastLeaseError = Date.now()
    } finally {
      leasing = false
    }
  }

  const timer = setInterval(() => { void lease() }, config.pollIntervalMs)
  timer.unref()
  void lease()
  return async () => {
    stopped = true
    clearInterval(timer)
    closing.abort()
    await Promise.all([...inFlight])
  }
}
