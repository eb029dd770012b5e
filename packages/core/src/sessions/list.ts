import { InvalidCursorError } from '../errors.js'
import type { Sql } from '../database/connection.js'
import { wrapDatabaseError } from '../database/errors.js'
import type { Session, SessionStatus } from './store.js'

export interface SessionListFilter {
  status?: SessionStatus
  clientId?: string
  /** 1..200 */
  limit: number
  /** `next_cursor` of the previous page. */
  cursor?: string
}

export interface SessionPage {
  sessions: Session[]
  /** Where the next page starts; null after the last one. */
  nextCursor: string | null
}

interface ListedRow {
  id: string
  client_id: string
  status: SessionStatus
  created_at: Date
  started_at: Date | null
  finished_at: Date | null
  operators_count: number
  /** created_at in microseconds since the epoch, exact. */
  created_us: string
}

/**
 * A cursor is the last row's position in the order (created_at in
 * microseconds, id), base64url: opaque to clients, exact (no rounding
 * through a JS Date, which has milliseconds).
 */
export function encodeCursor (createdUs: string, id: string): string {
  return Buffer.from(`${createdUs}:${id}`).toString('base64url')
}

export function decodeCursor (cursor: string): { createdUs: string, id: string } {
  const match = /^(\d{1,19}):([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString())
  if (match === null) throw new InvalidCursorError()
  return { createdUs: match[1]!, id: match[2]! }
}

/**
 * SPEC §12 `GET /sessions`: newest first, keyset pagination on
 * (created_at, id), so pages neither skip nor repeat a row while sessions
 * are being created (new ones are newer than any cursor).
 */
export async function listSessions (sql: Sql, filter: SessionListFilter): Promise<SessionPage> {
  const after = filter.cursor === undefined ? undefined : decodeCursor(filter.cursor)
  try {
    const rows = await sql<ListedRow[]>`
      select s.id, s.client_id, s.status, s.created_at, s.started_at, s.finished_at,
        (select count(*) from session_operators o where o.session_id = s.id)::int as operators_count,
        ((extract(epoch from s.created_at) * 1000000)::bigint)::text as created_us
      from streaming_sessions s
      where true
        ${filter.status === undefined ? sql`` : sql`and s.status = ${filter.status}`}
        ${filter.clientId === undefined ? sql`` : sql`and s.client_id = ${filter.clientId}`}
        ${after === undefined
          ? sql``
          : sql`and (s.created_at, s.id) < (timestamptz 'epoch' + ${after.createdUs}::bigint * interval '1 microsecond', ${after.id}::uuid)`}
      order by s.created_at desc, s.id desc
      limit ${filter.limit + 1}`
    const page = rows.slice(0, filter.limit)
    const last = page.at(-1)
    return {
      sessions: page.map((row) => ({
        id: row.id,
        clientId: row.client_id,
        status: row.status,
        createdAt: row.created_at,
        startedAt: row.started_at,
        finishedAt: row.finished_at,
        operatorsCount: row.operators_count,
      })),
      nextCursor: rows.length > filter.limit && last !== undefined ? encodeCursor(last.created_us, last.id) : null,
    }
  } catch (err) {
    throw wrapDatabaseError(err, 'list sessions')
  }
}
