import { SessionFinishedError, SessionNotFoundError } from '../errors.js'
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

/** What admitting a connection needs to know of a session, for one user id. */
export interface AdmissionLookup {
  clientId: string
  streamKeyHash: Buffer
  status: SessionStatus
  /** This user's registration, when it is already an operator of the session. */
  operatorJoinedAt: Date | null
  /** When this user was last revoked from the session: its tokens issued until then are refused. */
  revokedAt: Date | null
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
 * Sessions in PostgreSQL: with OperatorStore, the one place with SQL on
 * them, for the control plane and the relays' admission alike. Every method
 * takes already validated ids and throws registry errors (driver errors are
 * wrapped with their cause).
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
  async create (clientId: string, webhookUrl?: string): Promise<{ session: Session, streamKey: string }> {
    const streamKey = generateStreamKey()
    const [row] = await this.#run('create session', async () => await this.#sql<SessionRow[]>`
      with created as (
        insert into streaming_sessions as s (client_id, stream_key_hash, webhook_url)
        values (${clientId}, ${hashStreamKey(streamKey)}, ${webhookUrl ?? null})
        returning ${this.#sql.unsafe(SESSION_COLUMNS)}, 0 as operators_count
      ), event as (
        insert into session_events (session_id, type, occurred_at, data)
        select id, 'session.created', created_at, jsonb_build_object('client_id', client_id) from created
      )
      select * from created`)
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

  /**
   * Marks the session finished (with its session.finished event, `reason`
   * "deleted"); finishing a finished session changes nothing. The row lock
   * of `before` makes the old status exact under concurrent finishes.
   */
  async finish (id: string): Promise<Session> {
    const [row] = await this.#run('finish session', async () => await this.#sql<SessionRow[]>`
      with before as (
        select id, status from streaming_sessions where id = ${id} for update
      ), finished as (
        update streaming_sessions s
        set status = 'finished',
            finished_at = coalesce(s.finished_at, now()),
            updated_at = case when s.status = 'finished' then s.updated_at else now() end
        from before where s.id = before.id
        returning ${this.#sql.unsafe(SESSION_COLUMNS)}, before.status as was,
          (select count(*) from session_operators o where o.session_id = s.id)::int as operators_count
      ), event as (
        insert into session_events (session_id, type, occurred_at, data)
        select id, 'session.finished', finished_at, jsonb_build_object('reason', 'deleted') from finished where was <> 'finished'
      )
      select * from finished`)
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

  async lookupForAdmission (id: string, userId: string): Promise<AdmissionLookup | undefined> {
    const [row] = await this.#run(`look up session ${id}`, async () => await this.#sql<Array<{
      client_id: string, stream_key_hash: Buffer, status: SessionStatus, joined_at: Date | null, revoked_at: Date | null
    }>>`
      select s.client_id, s.stream_key_hash, s.status, o.joined_at, r.revoked_at
      from streaming_sessions s
      left join session_operators o on o.session_id = s.id and o.user_id = ${userId}
      left join operator_revocations r on r.session_id = s.id and r.user_id = ${userId}
      where s.id = ${id}`)
    return row === undefined
      ? undefined
      : { clientId: row.client_id, streamKeyHash: row.stream_key_hash, status: row.status, operatorJoinedAt: row.joined_at, revokedAt: row.revoked_at }
  }

  /**
   * Marks the session active for a new publisher connection and returns its
   * epoch (one more than the last). A session that was `waiting` records
   * session.active; a publisher replacing another changes no status.
   */
  async activate (id: string): Promise<number> {
    const [row] = await this.#run(`activate session ${id}`, async () => await this.#sql<Array<{ publisher_epoch: string }>>`
      with before as (
        select id, status from streaming_sessions where id = ${id} and status <> 'finished' for update
      ), activated as (
        update streaming_sessions s
        set status = 'active',
            started_at = coalesce(s.started_at, now()),
            updated_at = now(),
            publisher_epoch = s.publisher_epoch + 1
        from before where s.id = before.id and s.status <> 'finished'
        returning s.id, s.client_id, s.publisher_epoch, s.updated_at, before.status as was
      ), event as (
        insert into session_events (session_id, type, occurred_at, data)
        select id, 'session.active', updated_at, jsonb_build_object('client_id', client_id, 'publisher_epoch', publisher_epoch)
        from activated where was = 'waiting'
      )
      select publisher_epoch from activated`)
    // Finished (or gone) since the caller looked it up.
    if (row === undefined) throw new SessionFinishedError(id)
    return Number(row.publisher_epoch)
  }

  /** Back to `waiting` unless a newer publisher (epoch) took over or the session finished. */
  async markWaiting (id: string, epoch: number): Promise<boolean> {
    const rows = await this.#run(`mark session ${id} waiting`, async () => await this.#sql`
      with waiting as (
        update streaming_sessions set status = 'waiting', updated_at = now()
        where id = ${id} and status = 'active' and publisher_epoch = ${epoch}
        returning id, client_id, updated_at
      ), event as (
        insert into session_events (session_id, type, occurred_at, data)
        select id, 'session.waiting', updated_at, jsonb_build_object('client_id', client_id) from waiting
      )
      select id from waiting`)
    return rows.length > 0
  }

  /** Sessions per status, from the counters the database keeps (no scan of the sessions). */
  async countByStatus (): Promise<Partial<Record<SessionStatus, number>>> {
    const rows = await this.#run('count sessions', async () => await this.#sql<Array<{ status: SessionStatus, count: string }>>`
      select status, count from session_counts`)
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]))
  }

  /**
   * Finishes up to `limit` sessions that never became active and were created
   * more than `ageMs` ago; returns their ids. Safe to run from several
   * processes at once: each session is finished by one statement only.
   */
  async finishNeverActive (ageMs: number, limit: number): Promise<string[]> {
    const rows = await this.#run('finish idle sessions', async () => await this.#sql<Array<{ id: string }>>`
      with finished as (
        update streaming_sessions s
        set status = 'finished', finished_at = now(), updated_at = now()
        where s.id in (
          select id from streaming_sessions
          where status = 'waiting' and started_at is null and created_at < now() - make_interval(secs => ${ageMs / 1000})
          order by created_at
          limit ${limit}
          for update skip locked
        )
        returning s.id, s.finished_at
      ), event as (
        insert into session_events (session_id, type, occurred_at, data)
        select id, 'session.finished', finished_at, jsonb_build_object('reason', 'idle') from finished
      )
      select id from finished`)
    return rows.map((row) => row.id)
  }

  /** Deletes up to `limit` sessions finished more than `ageMs` ago (their operators go with them); returns how many. */
  async deleteFinished (ageMs: number, limit: number): Promise<number> {
    const rows = await this.#run('delete finished sessions', async () => await this.#sql`
      delete from streaming_sessions
      where id in (
        select id from streaming_sessions
        where status = 'finished' and finished_at < now() - make_interval(secs => ${ageMs / 1000})
        order by finished_at
        limit ${limit}
        for update skip locked
      )
      returning id`)
    return rows.length
  }
}
