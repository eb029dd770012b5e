import type { SessionEventType } from '@streaming-service/protocol'
import { SessionNotFoundError } from '../errors.js'
import type { Sql } from '../database/connection.js'
import { wrapDatabaseError } from '../database/errors.js'

export type { SessionEventType } from '@streaming-service/protocol'

/** Where an event's webhook delivery stands (SPEC §12). */
export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'skipped'

export interface SessionEvent {
  id: string
  sessionId: string
  type: SessionEventType
  occurredAt: Date
  /** Small and never a secret: ids, a reason, an epoch. */
  data: Record<string, unknown>
  delivery: DeliveryState
  attempts: number
  deliveredAt: Date | null
  lastError: string | null
}

export interface SessionEventRow {
  id: string
  session_id: string
  type: SessionEventType
  occurred_at: Date
  data: Record<string, unknown>
  delivery: DeliveryState
  attempts: number
  delivered_at: Date | null
  last_error: string | null
}

export const EVENT_COLUMNS = 'e.id, e.session_id, e.type, e.occurred_at, e.data, e.delivery, e.attempts, e.delivered_at, e.last_error'

export function toSessionEvent (row: SessionEventRow): SessionEvent {
  return {
    id: row.id,
    sessionId: row.session_id,
    type: row.type,
    occurredAt: row.occurred_at,
    data: row.data,
    delivery: row.delivery,
    attempts: row.attempts,
    deliveredAt: row.delivered_at,
    lastError: row.last_error,
  }
}

/**
 * Per-session order: every statement that inserts an event first locks its
 * session's row (an update, `for update` or `for no key update`) and holds
 * the lock until it commits, so a session's events commit in `seq` order and
 * a deliverer never sees a later event without the earlier ones.
 *
 * The session event log (SPEC §12), read side, plus events that change no
 * row of their own (an operator connection closing). Events that report a
 * change are inserted by the stores' statements that make it, so that both
 * commit or neither does.
 */
export class SessionEventLog {
  readonly #sql: Sql

  constructor (sql: Sql) {
    this.#sql = sql
  }

  /** A session's events in the order they happened; SS_SESSION_NOT_FOUND for an unknown session. */
  async list (sessionId: string): Promise<SessionEvent[]> {
    try {
      const rows = await this.#sql<Array<SessionEventRow & { found: boolean }>>`
        select true as found, ${this.#sql.unsafe(EVENT_COLUMNS)}
        from streaming_sessions s
        left join session_events e on e.session_id = s.id
        where s.id = ${sessionId}
        order by e.seq asc`
      if (rows.length === 0) throw new SessionNotFoundError(sessionId)
      return rows.filter((row) => row.id !== null).map(toSessionEvent)
    } catch (err) {
      throw wrapDatabaseError(err, `list events of ${sessionId}`)
    }
  }

  /** Records an event of an existing session; nothing when the session is gone. */
  async record (sessionId: string, type: SessionEventType, data: Record<string, unknown>): Promise<void> {
    try {
      await this.#sql`
        insert into session_events (session_id, type, data)
        select id, ${type}, ${this.#sql.json(data as never)} from streaming_sessions where id = ${sessionId}
        for no key update`
    } catch (err) {
      throw wrapDatabaseError(err, `record ${type} of ${sessionId}`)
    }
  }
}
