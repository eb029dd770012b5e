import { SessionFinishedError, SessionNotFoundError, TooManyOperatorsError } from '../errors.js'
import type { TransactionSql } from 'postgres'
import type { Sql } from '../database/connection.js'
import { wrapDatabaseError } from '../database/errors.js'
import type { SessionStatus } from './store.js'

export interface Operator {
  userId: string
  joinedAt: Date
}

/** Records operator.joined on `sql` (a transaction or the pool). */
async function joinedEvent (sql: Sql | TransactionSql, id: string, userId: string, firstJoin: boolean): Promise<void> {
  await sql`
    insert into session_events (session_id, type, data)
    select id, 'operator.joined', ${sql.json({ user_id: userId, first_join: firstJoin })} from streaming_sessions where id = ${id}
    for no key update`
}

/**
 * A session's operators in PostgreSQL: registration under the limit, the
 * list, and revocation (SPEC §9). Ids are validated by the caller; every
 * method throws registry errors.
 */
export class OperatorStore {
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

  /**
   * Registers a new operator under the limit. Concurrent joins on different
   * relays (different pools) serialise on the session row's lock; each
   * statement after the lock sees the operators committed before it was
   * granted (READ COMMITTED takes a fresh snapshot per statement), so the count
   * cannot be stale. A single statement could not guarantee that: its snapshot
   * predates the lock wait.
   */
  async register (id: string, userId: string, maxOperators: number): Promise<{ joinedAt: Date, firstJoin: boolean }> {
    return await this.#run(`register operator of ${id}`, async () => await this.#sql.begin(async (tx) => {
      const [locked] = await tx<Array<{ status: SessionStatus }>>`
        select status from streaming_sessions where id = ${id} for update`
      if (locked === undefined) throw new SessionNotFoundError(id)
      if (locked.status === 'finished') throw new SessionFinishedError(id)

      const [seen] = await tx<Array<{ operators: number, joined_at: Date | null }>>`
        select count(*)::int as operators, max(joined_at) filter (where user_id = ${userId}) as joined_at
        from session_operators where session_id = ${id}`
      // Registered by a concurrent connection of the same user while we waited for the lock.
      if (seen!.joined_at !== null) {
        await joinedEvent(tx, id, userId, false)
        return { joinedAt: seen!.joined_at, firstJoin: false }
      }
      if (seen!.operators >= maxOperators) throw new TooManyOperatorsError(id, maxOperators)

      const [inserted] = await tx<Array<{ joined_at: Date }>>`
        insert into session_operators (session_id, user_id) values (${id}, ${userId})
        on conflict (session_id, user_id) do nothing
        returning joined_at`
      const joined = inserted === undefined
        ? { joinedAt: (await tx<Array<{ joined_at: Date }>>`select joined_at from session_operators where session_id = ${id} and user_id = ${userId}`)[0]!.joined_at, firstJoin: false }
        : { joinedAt: inserted.joined_at, firstJoin: true }
      await joinedEvent(tx, id, userId, joined.firstJoin)
      return joined
    }))
  }

  /**
   * An operator already on the list connected again: its operator.joined
   * event (every admitted operator connection has one, and one operator.left
   * when it closes).
   */
  async reconnected (id: string, userId: string): Promise<void> {
    await this.#run(`record operator of ${id}`, async () => { await joinedEvent(this.#sql, id, userId, false) })
  }

  /** Operators in join order; throws SS_SESSION_NOT_FOUND for an unknown session. */
  async list (id: string): Promise<Operator[]> {
    const rows = await this.#run('list operators', async () => await this.#sql<Array<{ exists: boolean, user_id: string | null, joined_at: Date | null }>>`
      select true as exists, o.user_id, o.joined_at
      from streaming_sessions s
      left join session_operators o on o.session_id = s.id
      where s.id = ${id}
      order by o.joined_at asc, o.user_id asc`)
    if (rows.length === 0) throw new SessionNotFoundError(id)
    return rows.filter((row) => row.user_id !== null).map((row) => ({ userId: row.user_id!, joinedAt: row.joined_at! }))
  }

  /**
   * Revokes `userId` from the session: it leaves the operator list (its slot
   * is free again) and its tokens issued until now are refused from now on.
   * Returns when, the moment tokens are compared with. Throws
   * SS_SESSION_NOT_FOUND for an unknown session.
   */
  async revoke (id: string, userId: string): Promise<Date> {
    return await this.#run(`revoke operator of ${id}`, async () => await this.#sql.begin(async (tx) => {
      // Locked: its event commits in order with the session's others (SessionEventLog).
      const [session] = await tx`select 1 from streaming_sessions where id = ${id} for no key update`
      if (session === undefined) throw new SessionNotFoundError(id)
      await tx`delete from session_operators where session_id = ${id} and user_id = ${userId}`
      const [row] = await tx<Array<{ revoked_at: Date }>>`
        insert into operator_revocations (session_id, user_id) values (${id}, ${userId})
        on conflict (session_id, user_id) do update set revoked_at = now()
        returning revoked_at`
      await tx`
        insert into session_events (session_id, type, occurred_at, data)
        values (${id}, 'operator.revoked', ${row!.revoked_at}, ${tx.json({ user_id: userId })})`
      return row!.revoked_at
    }))
  }
}
