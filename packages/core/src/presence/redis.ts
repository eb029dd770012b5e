import { BackplaneUnavailableError } from '../errors.js'
import { LogThrottle } from '../log-throttle.js'
import type { Logger } from '../logger.js'
import { quitWithin, watchConnection, type ConnectionWatch } from '../redis/connection.js'
import { presenceBatch, presenceClient, type PresenceBatch, type PresenceClient } from './redis-client.js'
import { EntryTable, presenceKey, userIdOf, type Entry } from './redis-entries.js'
import type { Leave, Presence, PresenceRole } from './types.js'

export interface RedisPresenceOptions {
  /** REDIS_URL, or REDIS_CLUSTER_NODES (then keys carry the session id as hash tag). */
  target: { url: string } | { nodes: ReadonlyArray<{ host: string, port: number }> }
  keyPrefix: string
  nodeId: string
  logger: Logger
  ttlMs: number
  refreshMs: number
}

/** How long a read made before the very first connection waits for it (startup), instead of failing at once. */
const FIRST_CONNECT_WAIT_MS = 1000
/** How long close() waits for its removals and QUIT before cutting the socket. */
const QUIT_TIMEOUT_MS = 1000
/** Write failures are logged at most this often, with how many there were. */
const LOG_EVERY_MS = 10_000

const noop: Leave = () => {}

/**
 * Presence shared by every node of a deployment through Redis.
 *
 * Layout: one sorted set per session, `<prefix>presence:<sessionId>`, whose
 * members are connections, `<role>:<nodeId>:<connectionId>:<userId>` (the
 * user id may contain ':', so it comes last; node and connection ids never
 * do), scored with the time in ms until which the entry is valid:
 * the writer's `Date.now() + ttlMs`.
 *
 * - enter: ZADD + PEXPIRE of the key to 2 × ttl, so the key of a session
 *   whose nodes all died disappears by itself. leave: ZREM.
 * - Every `refreshMs` a node re-ZADDs all its live entries with a new expiry,
 *   in one pipeline (one ZADD per session and batch), re-arms the PEXPIREs
 *   and prunes entries that expired more than a ttl ago (dead nodes' leftovers).
 *   A node that dies stops refreshing: its entries are gone from reads at
 *   most `ttlMs` after its last refresh.
 * - Reads: ZRANGEBYSCORE key <now> +inf, read-only. Writer and reader clocks
 *   are compared, so hosts must be NTP-synchronised: a skew of d shortens or
 *   lengthens an entry by d, harmless while d ≪ ttl - refresh (10 s by default).
 * - Its own connection, offline queue off: a write that cannot be sent now
 *   fails at once and is never replayed late (a stale ZADD after a ZREM would
 *   resurrect a connection). Nothing is lost by it: the local table is the
 *   truth, and on every (re)connect this node rewrites all its live entries
 *   and retries the removals that failed, so after an outage — even one that
 *   emptied Redis — the store matches the node within one round trip.
 * - Redis down: enter/leave still only update the local table; reads reject
 *   with SS_BACKPLANE_UNAVAILABLE (callers answer 503).
 */
export class RedisPresence implements Presence {
  readonly kind = 'redis' as const
  readonly #redis: PresenceClient
  readonly #log: Logger
  readonly #prefix: string
  readonly #ttlMs: number
  readonly #entries: EntryTable
  readonly #hashTag: boolean
  readonly #timer: NodeJS.Timeout
  #refreshing = false
  #closed = false
  #closing: Promise<void> | undefined
  readonly #connection: ConnectionWatch
  #failedWrites = 0
  readonly #logThrottle = new LogThrottle(LOG_EVERY_MS)

  constructor (options: RedisPresenceOptions) {
    this.#log = options.logger
    this.#prefix = options.keyPrefix
    this.#ttlMs = options.ttlMs
    this.#hashTag = 'nodes' in options.target
    this.#entries = new EntryTable(options.keyPrefix, options.nodeId, this.#hashTag)
    this.#redis = presenceClient(options.target, `ss-presence-${options.nodeId}`)
    this.#connection = watchConnection(this.#redis, {
      log: this.#log,
      subject: 'presence',
      closed: () => this.#closed,
      fields: () => ({ connections: this.#entries.liveCount }),
      restoredFields: () => ({ failedWrites: this.#failedWrites, unremoved: this.#entries.unremovedCount }),
      restoredNote: '; rewriting this node\'s entries',
      onReady: () => {
        // Whatever was in flight failed with the old socket (maxRetriesPerRequest 0).
        this.#refreshing = false
        this.#refresh()
      },
    })
    this.#timer = setInterval(this.#refresh, options.refreshMs)
  }

  enter (sessionId: string, role: PresenceRole, userId: string): Leave {
    if (this.#closed) return noop
    const entry = this.#entries.add(sessionId, role, userId)
    // While disconnected the entry only waits in the table: the reconnect writes it.
    if (this.#connected()) {
      entry.until = Date.now() + this.#ttlMs
      this.#exec(presenceBatch(this.#redis).zadd(entry.key, entry.until, entry.member).pexpire(entry.key, this.#ttlMs * 2), 'enter')
    }
    let active = true
    return () => {
      if (!active) return
      active = false
      this.#leave(entry)
    }
  }

  async publisherOnline (sessionId: string): Promise<boolean> {
    const members = await this.#read(sessionId)
    return members.some((member) => member.startsWith('publisher:'))
  }

  async onlineOperators (sessionId: string): Promise<Set<string>> {
    const operators = new Set<string>()
    for (const member of await this.#read(sessionId)) {
      if (!member.startsWith('operator:')) continue
      const userId = userIdOf(member)
      if (userId !== undefined) operators.add(userId)
    }
    return operators
  }

  async close (): Promise<void> {
    if (this.#closing !== undefined) return await this.#closing
    this.#closed = true
    clearInterval(this.#timer)
    this.#closing = this.#shutdown()
    await this.#closing
  }

  #leave (entry: Entry): void {
    this.#entries.delete(entry)
    // Never written, or whatever was written has expired by now: nothing to remove.
    if (this.#closed || entry.until <= Date.now()) return
    if (!this.#connected()) {
      this.#entries.unremoved(entry)
      return
    }
    this.#redis.zrem(entry.key, entry.member).catch((err: unknown) => {
      this.#writeFailed(err, 'leave')
      if (!this.#closed) this.#entries.unremoved(entry)
    })
  }

  async #read (sessionId: string): Promise<string[]> {
    if (this.#closed) throw new BackplaneUnavailableError('presence is closed')
    if (!this.#connected()) await this.#firstConnection()
    try {
      return await this.#redis.zrangebyscore(presenceKey(this.#prefix, sessionId, this.#hashTag), Date.now(), '+inf')
    } catch (err) {
      throw new BackplaneUnavailableError(`presence of session ${sessionId} cannot be read: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Rewrites every live entry with a fresh expiry and retries failed removals; also run on every (re)connect. */
  readonly #refresh = (): void => {
    if (!this.#connected() || this.#refreshing) return
    const now = Date.now()
    for (const { key, entries } of this.#entries.takeRemovals(now)) {
      this.#redis.zrem(key, ...entries.map((entry) => entry.member)).catch((err: unknown) => {
        this.#writeFailed(err, 'leave')
        if (!this.#closed) for (const entry of entries) this.#entries.unremoved(entry)
      })
    }
    const pipeline = presenceBatch(this.#redis)
    if (!this.#entries.writeAll(pipeline, now, this.#ttlMs)) return
    this.#refreshing = true
    this.#exec(pipeline, 'refresh', () => { this.#refreshing = false })
  }

  /** Sends a pipeline without waiting for it; failed commands are counted and logged. */
  #exec (pipeline: PresenceBatch, op: string, done?: () => void): void {
    pipeline.exec().then((results) => {
      for (const [err] of results ?? []) {
        if (err !== null && err !== undefined) this.#writeFailed(err, op)
      }
    }, (err: unknown) => { this.#writeFailed(err, op) }).finally(done)
  }

  #writeFailed (err: unknown, op: string): void {
    this.#failedWrites++
    if (this.#closed) return
    this.#logThrottle.run('write', (suppressed) => {
      this.#log.warn({ err, op, failedWrites: this.#failedWrites, suppressed }, 'presence write failed')
    })
  }

  /** Waits for the first connection only (startup); once it has been up, down means unavailable now. */
  async #firstConnection (): Promise<void> {
    if (this.#connection.everReady) throw new BackplaneUnavailableError(`presence redis connection is ${this.#redis.status}`)
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer)
        this.#redis.off('ready', onReady)
        this.#redis.off('end', onEnd)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onReady = (): void => { done() }
      const onEnd = (): void => { done(new BackplaneUnavailableError('presence is closed')) }
      const timer = setTimeout(() => {
        done(new BackplaneUnavailableError(`presence not connected to redis within ${FIRST_CONNECT_WAIT_MS} ms`))
      }, FIRST_CONNECT_WAIT_MS)
      this.#redis.once('ready', onReady)
      this.#redis.once('end', onEnd)
    })
  }

  #connected (): boolean {
    return !this.#closed && this.#redis.status === 'ready'
  }

  /** A node shutting down takes its entries with it rather than leaving them to expire. */
  async #shutdown (): Promise<void> {
    const redis = this.#redis
    const batches = this.#entries.drain(Date.now())
    const removals = redis.status === 'ready' ? batches.map(async ({ key, members }) => await redis.zrem(key, ...members).catch(() => {})) : []
    await quitWithin(redis, QUIT_TIMEOUT_MS, removals)
  }
}
