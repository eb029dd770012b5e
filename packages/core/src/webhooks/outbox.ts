import { randomUUID } from 'node:crypto'
import type { Sql } from '../database/connection.js'
import { wrapDatabaseError } from '../database/errors.js'
import type { SessionEventType } from '../sessions/events.js'

/** An event taken for one delivery attempt (a lease). */
export interface LeasedEvent {
  seq: string
  id: string
  sessionId: string
  type: SessionEventType
  occurredAt: Date
  data: Record<string, unknown>
  /** Attempts so far, this one included. */
  attempts: number
  /** The session's own receiver, if it has one. */
  webhookUrl: string | null
  /** Receivers that already acknowledged this event (a retry skips them). */
  deliveredTo: string[]
  /** Fences this lease: an outcome is written only while it is still ours. */
  leaseToken: string
}

export type AttemptOutcome =
  | { result: 'delivered', deliveredTo: string[] }
  | { result: 'skipped' }
  | { result: 'refused', deliveredTo: string[], error: string, retryInMs: number, retryForMs: number }

export interface OutboxStats {
  pending: number
  /** Seconds since the oldest pending event happened; 0 when none is pending. */
  oldestPendingSeconds: number
}

interface LeasedRow {
  seq: string
  id: string
  session_id: string
  type: SessionEventType
  occurred_at: Date
  data: Record<string, unknown>
  attempts: number
  webhook_url: string | null
  delivered_to: string[]
}

/**
 * The webhook side of the session event log (SPEC §12): what control planes
 * deliver. Any number of them may share it:
 * - a control plane leases due events (`for update skip locked`, so two never
 *   take one row), holds the lease while it posts, and writes the outcome only
 *   while the lease is still its own. A holder that dies leaves its lease to
 *   run out; the event is then taken again (at least once, same event id).
 * - only the oldest pending event of a session is ever due, so a session's
 *   events go out in order and a dead receiver holds back its session only.
 */
export class WebhookOutbox {
  readonly #sql: Sql

  constructor (sql: Sql) {
    this.#sql = sql
  }

  /** Leases up to `limit` due events for `leaseMs`. */
  async lease (limit: number, leaseMs: number): Promise<LeasedEvent[]> {
    const token = randomUUID()
    try {
      const rows = await this.#sql<LeasedRow[]>`
        update session_events e
        set leased_until = now() + ${leaseMs} * interval '1 millisecond',
            lease_token = ${token},
            attempts = e.attempts + 1,
            first_attempt_at = coalesce(e.first_attempt_at, now())
        from streaming_sessions s
        where s.id = e.session_id and e.seq in (
          select h.seq from session_events h
          where h.delivery = 'pending' and h.next_attempt_at <= now()
            and (h.leased_until is null or h.leased_until < now())
            and not exists (
              select 1 from session_events p
              where p.session_id = h.session_id and p.delivery = 'pending' and p.seq < h.seq
            )
          order by h.next_attempt_at, h.seq
          limit ${limit}
          for update of h skip locked
        )
        returning e.seq::text as seq, e.id, e.session_id, e.type, e.occurred_at, e.data, e.attempts, s.webhook_url, e.delivered_to`
      return rows.map((row) => ({
        seq: row.seq,
        id: row.id,
        sessionId: row.session_id,
        type: row.type,
        occurredAt: row.occurred_at,
        data: row.data,
        attempts: row.attempts,
        webhookUrl: row.webhook_url,
        deliveredTo: row.delivered_to,
        leaseToken: token,
      }))
    } catch (err) {
      throw wrapDatabaseError(err, 'lease webhook events')
    }
  }

  /**
   * Writes an attempt's outcome and ends the lease. A refusal is retried
   * after `retryInMs`, never later than WEBHOOK_RETRY_FOR after the first
   * attempt; one refused at or past that moment is `failed`. Resolves to the
   * event's delivery state, or undefined when the lease was lost meanwhile.
   */
  async settle (event: LeasedEvent, outcome: AttemptOutcome): Promise<string | undefined> {
    const sql = this.#sql
    try {
      const [row] = outcome.result === 'refused'
        ? await sql<Array<{ delivery: string }>>`
            update session_events
            set delivery = case when first_attempt_at + ${outcome.retryForMs} * interval '1 millisecond' <= now() then 'failed' else 'pending' end,
                next_attempt_at = least(now() + ${outcome.retryInMs} * interval '1 millisecond', first_attempt_at + ${outcome.retryForMs} * interval '1 millisecond'),
                delivered_to = ${sql.array(outcome.deliveredTo, 25)},
                last_error = ${outcome.error.slice(0, 500)},
                leased_until = null, lease_token = null
            where seq = ${event.seq} and lease_token = ${event.leaseToken}
            returning delivery`
        : await sql<Array<{ delivery: string }>>`
            update session_events
            set delivery = ${outcome.result},
                delivered_at = now(),
                delivered_to = ${sql.array(outcome.result === 'delivered' ? outcome.deliveredTo : [], 25)},
                last_error = null,
                leased_until = null, lease_token = null
            where seq = ${event.seq} and lease_token = ${event.leaseToken}
            returning delivery`
      return row?.delivery
    } catch (err) {
      throw wrapDatabaseError(err, `settle webhook event ${event.id}`)
    }
  }

  /** For the queue gauges: pending events and the age of the oldest. */
  async stats (): Promise<OutboxStats> {
    try {
      const [row] = await this.#sql<Array<{ pending: number, oldest: string | null }>>`
        select count(*)::int as pending, extract(epoch from now() - min(occurred_at))::float8 as oldest
        from session_events where delivery = 'pending'`
      return { pending: row!.pending, oldestPendingSeconds: Math.max(0, Number(row!.oldest ?? 0)) }
    } catch (err) {
      throw wrapDatabaseError(err, 'count pending webhook events')
    }
  }
}
