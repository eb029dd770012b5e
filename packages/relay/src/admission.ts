import {
  OperatorRevokedError, SessionFinishedError, SessionNotFoundError, StreamKeyInvalidError, TokenInvalidError, verifyStreamKey,
  type AuthMode, type OperatorStore, type SessionEventLog, type SessionStore,
} from '@streaming-service/core'
import type { Credentials } from './credentials.js'

export interface PublisherTicket { role: 'publisher', sessionId: string, clientId: string, epoch: number }
export interface OperatorTicket { role: 'operator', sessionId: string, clientId: string, userId: string, joinedAt: Date, firstJoin: boolean }
export type Ticket = PublisherTicket | OperatorTicket

export interface AdmissionOptions {
  /** SESSION_MAX_OPERATORS: distinct operators a session may ever have. */
  maxOperators: number
  /** AUTH_MODE: in `token` mode operators need a token (verified in credentials.ts). */
  authMode: AuthMode
}

/**
 * Who may connect to a session, decided before the WebSocket upgrade; the
 * relay's only use of PostgreSQL (through the session store).
 *
 * Relays read PostgreSQL directly rather than asking the control plane: an
 * admission is one lookup per connection attempt, plus one short write when it
 * changes something (a publisher's status and epoch, a new operator's row).
 * That needs only a pool of 2–3 connections per relay, adds no extra network hop
 * and no dependency on the control plane's availability on the connect path.
 * 50 relays × 3 = 150 server connections, well within PostgreSQL's limits; past
 * that, put a pgbouncer (transaction pooling) in front. Open streams never touch
 * the database: once admitted, a socket's frames go relay → backplane → relay,
 * so a PostgreSQL outage only refuses new admissions (SS_DB_UNAVAILABLE).
 *
 * Ids are validated by the caller (parseUuid / parseUserId from core). Every
 * method throws registry errors.
 */
export class Admission {
  readonly #sessions: SessionStore
  readonly #operators: OperatorStore
  readonly #events: SessionEventLog
  readonly #options: AdmissionOptions

  constructor (stores: { sessions: SessionStore, operators: OperatorStore, events: SessionEventLog }, options: AdmissionOptions) {
    this.#sessions = stores.sessions
    this.#operators = stores.operators
    this.#events = stores.events
    this.#options = options
  }

  /**
   * `userId` equal to the session's client id (compared lower-cased) is the
   * publisher: it must present the stream key, and its admission makes the
   * session `active` and bumps `publisher_epoch` in one statement; the ticket
   * carries the new epoch so `publisherLeft` can tell a stale publisher from the
   * current one. Anyone else is an operator: registered on its first connection;
   * a new operator is refused when the session already has `maxOperators`, a
   * registered one is always admitted. Operators may join `waiting` and `active`
   * sessions; nobody joins a finished one (its tokens die with it). In `token`
   * mode an operator needs a verified token, refused (4403) when it was issued
   * no later than the operator's revocation.
   */
  async admit (sessionId: string, userId: string, credentials: Credentials): Promise<Ticket> {
    const session = await this.#sessions.lookupForAdmission(sessionId, userId)
    if (session === undefined) throw new SessionNotFoundError(sessionId)
    if (session.status === 'finished') throw new SessionFinishedError(sessionId)
    const clientId = session.clientId

    if (userId.toLowerCase() === clientId) {
      if (!verifyStreamKey(credentials.streamKey, session.streamKeyHash)) throw new StreamKeyInvalidError()
      return { role: 'publisher', sessionId, clientId, epoch: await this.#sessions.activate(sessionId) }
    }
    if (this.#options.authMode === 'token') {
      const token = credentials.token
      if (token === undefined) throw new TokenInvalidError('missing: operators present ?token= or Authorization: Bearer <token>')
      // iat has whole seconds: a token of the revocation's own second is refused too.
      if (session.revokedAt !== null && token.iat <= Math.floor(session.revokedAt.getTime() / 1000)) throw new OperatorRevokedError(userId, sessionId)
    }

    // A known operator needs no lock, only its operator.joined event: the common reconnect path.
    if (session.operatorJoinedAt !== null) {
      await this.#operators.reconnected(sessionId, userId)
      return { role: 'operator', sessionId, clientId, userId, joinedAt: session.operatorJoinedAt, firstJoin: false }
    }
    return { role: 'operator', sessionId, clientId, userId, ...await this.#operators.register(sessionId, userId, this.#options.maxOperators) }
  }

  /**
   * The publisher admitted with `ticket.epoch` disconnected. The session goes
   * back to `waiting` only while it is still `active` with that epoch: after a
   * newer publisher took over, or once the session is finished, nothing
   * changes. Resolves to whether the status changed.
   */
  async publisherLeft (ticket: PublisherTicket): Promise<boolean> {
    return await this.#sessions.markWaiting(ticket.sessionId, ticket.epoch)
  }

  /** An admitted operator connection closed: its operator.left event (SPEC §12). */
  async operatorLeft (ticket: OperatorTicket): Promise<void> {
    await this.#events.record(ticket.sessionId, 'operator.left', { user_id: ticket.userId })
  }
}
