import {
  SessionFinishedError, SessionNotFoundError, StreamKeyInvalidError, TooManyOperatorsError,
  verifyStreamKey, wrapDatabaseError, type SessionStatus, type Sql,
} from '@streaming-service/core'

export interface PublisherTicket { role: 'publisher', sessionId: string, clientId: string, epoch: number }
export interface OperatorTicket { role: 'operator', sessionId: string, clientId: string, userId: string, joinedAt: Date, firstJoin: boolean }
export type Ticket = PublisherTicket | OperatorTicket

export interface AdmissionOptions {
  /** SESSION_MAX_OPERATORS: distinct operators a session may ever have. */
  maxOperators: number
}

interface LookupRow {
  client_id: string
  stream_key_hash: Buffer
  status: SessionStatus
  /** This user's registration, when it is already an operator of the session. */
  joined_at: Date | null
}

/**
 * The one narrow module through which relays touch PostgreSQL: session lookup,
 * stream-key check, operator registration, status changes. Everything else a
 * relay does (fan-out, presence, takeover) goes through the backplane.
 *
 * Relays read PostgreSQL directly rather than asking the control plane: an
 * admission is one lookup per connection attempt, plus one short write when it
 * changes something (a publisher's status and epoch, a new operator's row).
 * That needs only a pool of 2–3 connections per relay, adds no extra network hop
 * and no dependency on the control plane's availability on the connect path.
 * 50 relays × 3 = 150 server connections, well within PostgreSQL's limits; past
 * that, put a pgbouncer (transaction pooling) in front. Open streams never touch
 * the database: once admitted, a socket's frames go relay → backplane → relay,
 * so a PostgreSQL outage only refuses new admissions (SS_DB_UNAVAILABLE, try again later).
 *
 * Ids are validated by the caller (parseUuid / parseUserId from core). Every
 * method throws registry errors; driver errors are wrapped with their cause.
 */
export class Admission {
  readonly #sql: Sql
  readonly #maxOperators: number

  constructor (sql: Sql, options: AdmissionOptions) {
    this.#sql = sql
    this.#maxOperators = options.maxOperators
  }

  async #run<T> (action: string, sessionId: string, query: () => Promise<T>): Promise<T> {
    try {
      return await query()
    } catch (err) {
      throw wrapDatabaseError(err, `${action} ${sessionId}`)
    }
  }

  /**
   * `userId` equal to the session's client id (compared lower-cased) is the
   * publisher: it must present the stream key, and its admission makes the
   * session `active` and bumps `publisher_epoch` in one statement; the ticket
   * carries the new epoch so `publisherLeft` can tell a stale publisher from the
   * current one. Anyone else is an operator: registered on its first connection;
   * a new operator is refused when the session already has `maxOperators`, a
   * registered one is always admitted. Operators may join `waiting` and `active`
   * sessions; nobody joins a finished one.
   */
  async admit (sessionId: string, userId: string, streamKey: string | undefined): Promise<Ticket> {
    const [session] = await this.#run('look up session', sessionId, async () => await this.#sql<LookupRow[]>`
      select s.client_id, s.stream_key_hash, s.status, o.joined_at
      from streaming_sessions s
      left join session_operators o on o.session_id = s.id and o.user_id = ${userId}
      where s.id = ${sessionId}`)
    if (session === undefined) throw new SessionNotFoundError(sessionId)
    if (session.status === 'finished') throw new SessionFinishedError(sessionId)
    const clientId = session.client_id

    if (userId.toLowerCase() === clientId) {
      if (!verifyStreamKey(streamKey, session.stream_key_hash)) throw new StreamKeyInvalidError()
      return { role: 'publisher', sessionId, clientId, epoch: await this.#activate(sessionId) }
    }

    // A known operator needs no write and no lock: the common reconnect path.
    if (session.joined_at !== null) {
      return { role: 'operator', sessionId, clientId, userId, joinedAt: session.joined_at, firstJoin: false }
    }
    return { role: 'operator', sessionId, clientId, userId, ...await this.#register(sessionId, userId) }
  }

  /** Marks the session active and returns the new publisher epoch. */
  async #activate (sessionId: string): Promise<number> {
    const [row] = await this.#run('activate session', sessionId, async () => await this.#sql<Array<{ publisher_epoch: string }>>`
      update streaming_sessions
      set status = 'active',
          started_at = coalesce(started_at, now()),
          updated_at = now(),
          publisher_epoch = publisher_epoch + 1
      where id = ${sessionId} and status <> 'finished'
      returning publisher_epoch`)
    // Finished between the lookup and this update (sessions are never deleted).
    if (row === undefined) throw new SessionFinishedError(sessionId)
    return Number(row.publisher_epoch)
  }

  /**
   * Registers a new operator under the limit. Concurrent joins on different
   * relays (different pools) serialise on the session row's lock; each
   * statement after the lock sees the operators committed before it was
   * granted (READ COMMITTED takes a fresh snapshot per statement), so the count
   * cannot be stale. A single statement could not guarantee that: its snapshot
   * predates the lock wait.
   */
  async #register (sessionId: string, userId: string): Promise<{ joinedAt: Date, firstJoin: boolean }> {
    return await this.#run('register operator', sessionId, async () => await this.#sql.begin(async (tx) => {
      const [locked] = await tx<Array<{ status: SessionStatus }>>`
        select status from streaming_sessions where id = ${sessionId} for update`
      if (locked === undefined) throw new SessionNotFoundError(sessionId)
      if (locked.status === 'finished') throw new SessionFinishedError(sessionId)

      const [seen] = await tx<Array<{ operators: number, joined_at: Date | null }>>`
        select count(*)::int as operators, max(joined_at) filter (where user_id = ${userId}) as joined_at
        from session_operators where session_id = ${sessionId}`
      // Registered by a concurrent connection of the same user while we waited for the lock.
      if (seen!.joined_at !== null) return { joinedAt: seen!.joined_at, firstJoin: false }
      if (seen!.operators >= this.#maxOperators) throw new TooManyOperatorsError(sessionId, this.#maxOperators)

      const [inserted] = await tx<Array<{ joined_at: Date }>>`
        insert into session_operators (session_id, user_id) values (${sessionId}, ${userId})
        on conflict (session_id, user_id) do nothing
        returning joined_at`
      if (inserted !== undefined) return { joinedAt: inserted.joined_at, firstJoin: true }
      const [existing] = await tx<Array<{ joined_at: Date }>>`
        select joined_at from session_operators where session_id = ${sessionId} and user_id = ${userId}`
      return { joinedAt: existing!.joined_at, firstJoin: false }
    }))
  }

  /**
   * The publisher admitted with `ticket.epoch` disconnected. The session goes
   * back to `waiting` only while it is still `active` with that epoch: after a
   * newer publisher took over, or once the session is finished, nothing
   * changes. Resolves to whether the status changed.
   */
  async publisherLeft (ticket: PublisherTicket): Promise<boolean> {
    const rows = await this.#run('release publisher', ticket.sessionId, async () => await this.#sql`
      update streaming_sessions
      set status = 'waiting', updated_at = now()
      where id = ${ticket.sessionId} and status = 'active' and publisher_epoch = ${ticket.epoch}
      returning id`)
    return rows.length === 1
  }

  /** Current status and publisher epoch; throws SS_SESSION_NOT_FOUND for an unknown session. */
  async state (sessionId: string): Promise<{ status: SessionStatus, epoch: number }> {
    const [row] = await this.#run('read session state', sessionId, async () => await this.#sql<Array<{ status: SessionStatus, publisher_epoch: string }>>`
      select status, publisher_epoch from streaming_sessions where id = ${sessionId}`)
    if (row === undefined) throw new SessionNotFoundError(sessionId)
    return { status: row.status, epoch: Number(row.publisher_epoch) }
  }
}
