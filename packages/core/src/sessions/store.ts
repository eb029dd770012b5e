import { SessionNotFoundError } from '../errors.js'
import type { Sql } from '../database/connection.js'
import { wrapDatabaseError } from '../database/errors.js'
import { generateStreamKey, hashStreamKey } from './stream-key.js'

export type SessionStatus = 'waiting' | 'active' | 'finished'

export interface Session {
  id: string
  clientId: string
  status: SessionStatus
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
  operatorsCount: number
}

export interface Operator {
  userId: string
  joinedAt: Date
}

interface SessionRow {
  id: string
  client_id: string
  status: SessionStatus
  created_at: Date
  started_at: Date | null
  finished_at: Date | null
  operators_count: number
}

function toSession (row: SessionRow): Session {
  return {
    id: row.id,
    clientId: row.client_id,
    status: row.status,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    operatorsCount: Number(row.operators_count),
  }
}

const SESSION_COLUMNS = 's.id, s.client_id, s.status, s.created_at, s.started_at, s.finished_at'

/**
 * Sessions and their operators in PostgreSQL. Every method takes already
 * validated ids and throws registry errors (driver errors are wrapped with
 * their cause).
 */
export class SessionStore {
  readonly #sql: Sql

  constructor (sql: Sql) {
    this.#sql = sql
  }

  async #run<T> (action: string, query: () => Promise<T>): Promise<T> {
    try {
      return await query()
    } catch (err) {
      throw wrapDatabaseError(err, action)
    }
  }

  /** Creates a `waiting` session; the stream key is returned once and stored hashed. */
  async create (clientId: string): Promise<{ session: Session, streamKey: string }> {
    const streamKey = generateStreamKey()
    const [row] = await this.#run('create session', async () => await this.#sql<SessionRow[]>`
      insert into streaming_sessions as s (client_id, stream_key_hash)
      values (${clientId}, ${hashStreamKey(streamKey)})
      returning ${this.#sql.unsafe(SESSION_COLUMNS)}, 0 as operators_count`)
    return { session: toSession(row!), streamKey }
  }

  async get (id: string): Promise<Session> {
    const [row] = await this.#run('get session', async () => await this.#sql<SessionRow[]>`
      select ${this.#sql.unsafe(SESSION_COLUMNS)},
        (select count(*) from session_operators o where o.session_id = s.id)::int as operators_count
      from streaming_sessions s where s.id = ${id}`)
    if (row === undefined) throw new SessionNotFoundError(id)
    return toSession(row)
  }

  /** Marks the session finished; finishing a finished session changes nothing. */
  async finish (id: string): Promise<Session> {
    const [row] = await this.#run('finish session', async () => await this.#sql<SessionRow[]>`
      update streaming_sessions s
      set status = 'finished',
          finished_at = coalesce(s.finished_at, now()),
          updated_at = case when s.status = 'finished' then s.updated_at else now() end
      where s.id = ${id}
      returning ${this.#sql.unsafe(SESSION_COLUMNS)},
        (select count(*) from session_operators o where o.session_id = s.id)::int as operators_count`)
    if (row === undefined) throw new SessionNotFoundError(id)
    return toSession(row)
  }

  /** Active sessions not touched for `idleMs` (their publisher's admission is at least that old). */
  async activeSince (idleMs: number): Promise<Array<{ id: string, epoch: number }>> {
    const rows = await this.#run('list active sessions', async () => await this.#sql<Array<{ id: string, epoch: string }>>`
      select id, publisher_epoch::text as epoch from streaming_sessions
      where status = 'active' and updated_at < now() - make_interval(secs => ${idleMs / 1000})`)
    return rows.map((row) => ({ id: row.id, epoch: Number(row.epoch) }))
  }

  /** Back to `waiting` unless a newer publisher (epoch) took over or the session finished. */
  async markWaiting (id: string, epoch: number): Promise<boolean> {
    const rows = await this.#run('mark session waiting', async () => await this.#sql`
      update streaming_sessions set status = 'waiting', updated_at = now()
      where id = ${id} and status = 'active' and publisher_epoch = ${epoch}
      returning id`)
    return rows.length > 0
  }

  async countByStatus (): Promise<Partial<Record<SessionStatus, number>>> {
    const rows = await this.#run('count sessions', async () => await this.#sql<Array<{ status: SessionStatus, count: number }>>`
      select status, count(*)::int as count from streaming_sessions group by status`)
    return Object.fromEntries(rows.map((row) => [row.status, row.count]))
  }

  /** Operators in join order; throws SS_SESSION_NOT_FOUND for an unknown session. */
  async operators (id: string): Promise<Operator[]> {
    const rows = await this.#run('list operators', async () => await this.#sql<Array<{ exists: boolean, user_id: string | null, joined_at: Date | null }>>`
      select true as exists, o.user_id, o.joined_at
      from streaming_sessions s
      left join session_operators o on o.session_id = s.id
      where s.id = ${id}
      order by o.joined_at asc, o.user_id asc`)
    if (rows.length === 0) throw new SessionNotFoundError(id)
    return rows.filter((row) => row.user_id !== null).map((row) => ({ userId: row.user_id!, joinedAt: row.joined_at! }))
  }
}
