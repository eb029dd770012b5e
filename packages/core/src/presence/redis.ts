import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { reconnectDelay } from '../backplane/redis.js'
import { BackplaneUnavailableError } from '../errors.js'
import type { Logger } from '../logger.js'
import type { Leave, Presence, PresenceRole } from './types.js'

export interface RedisPresenceOptions {
  /** REDIS_URL */
  url: string
  keyPrefix: string
  nodeId: string
  logger: Logger
  ttlMs: number
  refreshMs: number
}

/** Every presence key is named here: one sorted set per session. */
export function presenceKey (prefix: string, sessionId: string): string {
  return `${prefix}presence:${sessionId}`
}

/** Members per ZADD/ZREM, so a session with thousands of connections never makes one huge command. */
const BATCH = 512
/** How long a read made before the very first connection waits for it (startup), instead of failing at once. */
const FIRST_CONNECT_WAIT_MS = 1000
/** A command unanswered this long fails (a half-open connection must not hang reads). */
const COMMAND_TIMEOUT_MS = 2000
/** How long close() waits for its removals and QUIT before cutting the socket. */
const QUIT_TIMEOUT_MS = 1000
/** Write failures are logged at most this often, with how many there were. */
const LOG_EVERY_MS = 10_000

interface Entry {
  readonly key: string
  readonly member: string
  /** The latest expiry this node has sent for the entry (0: never sent): past it, Redis no longer shows it. */
  until: number
}

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
  readonly #redis: Redis
  readonly #log: Logger
  readonly #prefix: string
  readonly #nodeId: string
  readonly #ttlMs: number
  /** Per process, so connection ids never repeat those of an earlier run with the same node id. */
  readonly #runId = randomBytes(4).toString('hex')
  #connections = 0
  /** key → member → entry: this node's live connections, the source of truth for every rewrite. */
  readonly #live = new Map<string, Map<string, Entry>>()
  /** Left entries whose ZREM could not be sent or failed: retried until done or until they expire anyway. */
  readonly #unremoved = new Map<string, Entry>()
  readonly #timer: NodeJS.Timeout
  #refreshing = false
  #closed = false
  #closing: Promise<void> | undefined
  #everReady = false
  #downSince: number | undefined
  #errorLogged = false
  #failedWrites = 0
  #lastWarnAt = Number.NEGATIVE_INFINITY
  #unloggedFailures = 0

  constructor (options: RedisPresenceOptions) {
    this.#log = options.logger
    this.#prefix = options.keyPrefix
    this.#nodeId = options.nodeId
    this.#ttlMs = options.ttlMs
    this.#redis = new Redis(options.url, {
      connectionName: `ss-presence-${options.nodeId}`,
      connectTimeout: 3000,
      commandTimeout: COMMAND_TIMEOUT_MS,
      retryStrategy: reconnectDelay,
      enableReadyCheck: true,
      enableOfflineQueue: false,
      // 0: commands in flight when the socket closes fail at once instead of
      // waiting for (and never being resent on) the next connection.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    })
    this.#watch()
    this.#timer = setInterval(this.#refresh, options.refreshMs)
  }

  enter (sessionId: string, role: PresenceRole, userId: string): Leave {
    if (this.#closed) return noop
    const key = presenceKey(this.#prefix, sessionId)
    const connectionId = `${this.#runId}.${(this.#connections++).toString(36)}`
    const entry: Entry = { key, member: `${role}:${this.#nodeId}:${connectionId}:${userId}`, until: 0 }
    let members = this.#live.get(key)
    if (members === undefined) {
      members = new Map()
      this.#live.set(key, members)
    }
    members.set(entry.member, entry)
    // While disconnected the entry only waits in the table: the reconnect writes it.
    if (this.#connected()) {
      entry.until = Date.now() + this.#ttlMs
      this.#exec(this.#redis.pipeline().zadd(key, entry.until, entry.member).pexpire(key, this.#ttlMs * 2), 'enter')
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
    const members = this.#live.get(entry.key)
    if (members !== undefined && members.delete(entry.member) && members.size === 0) this.#live.delete(entry.key)
    // Never written, or whatever was written has expired by now: nothing to remove.
    if (this.#closed || entry.until <= Date.now()) return
    if (!this.#connected()) {
      this.#unremoved.set(entry.member, entry)
      return
    }
    this.#redis.zrem(entry.key, entry.member).catch((err: unknown) => {
      this.#writeFailed(err, 'leave')
      if (!this.#closed) this.#unremoved.set(entry.member, entry)
    })
  }

  async #read (sessionId: string): Promise<string[]> {
    if (this.#closed) throw new BackplaneUnavailableError('presence is closed')
    if (!this.#connected()) await this.#firstConnection()
    try {
      return await this.#redis.zrangebyscore(presenceKey(this.#prefix, sessionId), Date.now(), '+inf')
    } catch (err) {
      throw new BackplaneUnavailableError(`presence of session ${sessionId} cannot be read: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Rewrites every live entry with a fresh expiry and retries failed removals; also run on every (re)connect. */
  readonly #refresh = (): void => {
    if (!this.#connected() || this.#refreshing) return
    const now = Date.now()
    this.#retryRemovals(now)
    if (this.#live.size === 0) return
    const until = now + this.#ttlMs
    const pipeline = this.#redis.pipeline()
    for (const [key, members] of this.#live) {
      let args: Array<number | string> = []
      for (const entry of members.values()) {
        entry.until = until
        args.push(until, entry.member)
        if (args.length === BATCH * 2) {
          pipeline.zadd(key, ...args)
          args = []
        }
      }
      if (args.length > 0) pipeline.zadd(key, ...args)
      pipeline.pexpire(key, this.#ttlMs * 2)
      // Dead nodes' entries, a whole ttl after they expired: that margin is for clocks that disagree.
      pipeline.zremrangebyscore(key, '-inf', now - this.#ttlMs)
    }
    this.#refreshing = true
    this.#exec(pipeline, 'refresh', () => { this.#refreshing = false })
  }

  #retryRemovals (now: number): void {
    if (this.#unremoved.size === 0) return
    const byKey = new Map<string, Entry[]>()
    for (const entry of this.#unremoved.values()) {
      if (entry.until <= now) continue
      const entries = byKey.get(entry.key)
      if (entries === undefined) byKey.set(entry.key, [entry])
      else entries.push(entry)
    }
    this.#unremoved.clear()
    for (const [key, entries] of byKey) {
      for (let i = 0; i < entries.length; i += BATCH) {
        const batch = entries.slice(i, i + BATCH)
        this.#redis.zrem(key, ...batch.map((entry) => entry.member)).catch((err: unknown) => {
          this.#writeFailed(err, 'leave')
          if (this.#closed) return
          for (const entry of batch) this.#unremoved.set(entry.member, entry)
        })
      }
    }
  }

  /** Sends a pipeline without waiting for it; failed commands are counted and logged. */
  #exec (pipeline: ReturnType<Redis['pipeline']>, op: string, done?: () => void): void {
    pipeline.exec().then((results) => {
      for (const [err] of results ?? []) {
        if (err !== null && err !== undefined) this.#writeFailed(err, op)
      }
    }, (err: unknown) => { this.#writeFailed(err, op) }).finally(done)
  }

  #writeFailed (err: unknown, op: string): void {
    this.#failedWrites++
    if (this.#closed) return
    const now = performance.now()
    if (now - this.#lastWarnAt < LOG_EVERY_MS) {
      this.#unloggedFailures++
      return
    }
    this.#log.warn({ err, op, failedWrites: this.#failedWrites, suppressed: this.#unloggedFailures }, 'presence write failed')
    this.#lastWarnAt = now
    this.#unloggedFailures = 0
  }

  /** Waits for the first connection only (startup); once it has been up, down means unavailable now. */
  async #firstConnection (): Promise<void> {
    if (this.#everReady) throw new BackplaneUnavailableError(`presence redis connection is ${this.#redis.status}`)
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

  #watch (): void {
    const redis = this.#redis
    redis.on('ready', () => {
      if (this.#everReady) {
        const downMs = this.#downSince === undefined ? undefined : Math.round(performance.now() - this.#downSince)
        this.#log.info({ downMs, failedWrites: this.#failedWrites, connections: this.#liveCount(), unremoved: this.#unremoved.size }, 'presence connection restored; rewriting this node\'s entries')
      }
      this.#everReady = true
      this.#downSince = undefined
      this.#errorLogged = false
      // Whatever was in flight failed with the old socket (maxRetriesPerRequest 0).
      this.#refreshing = false
      this.#refresh()
    })
    redis.on('close', () => {
      if (this.#closed || this.#downSince !== undefined) return
      this.#downSince = performance.now()
      this.#log.warn({ connections: this.#liveCount() }, 'presence connection lost')
    })
    // Every failed reconnect attempt raises an error: one line per outage is enough.
    redis.on('error', (err: Error) => {
      if (this.#closed) return
      if (this.#errorLogged) {
        this.#log.debug({ err }, 'presence connection error')
        return
      }
      this.#errorLogged = true
      this.#log.warn({ err }, 'presence connection error')
    })
  }

  #liveCount (): number {
    let count = 0
    for (const members of this.#live.values()) count += members.size
    return count
  }

  /** A node shutting down takes its entries with it rather than leaving them to expire. */
  async #shutdown (): Promise<void> {
    const redis = this.#redis
    if (redis.status === 'ready') {
      const now = Date.now()
      const removals: Array<Promise<unknown>> = []
      const remove = (key: string, members: string[]): void => {
        for (let i = 0; i < members.length; i += BATCH) {
          removals.push(redis.zrem(key, ...members.slice(i, i + BATCH)).catch(() => {}))
        }
      }
      for (const [key, members] of this.#live) remove(key, [...members.keys()])
      for (const entry of this.#unremoved.values()) {
        if (entry.until > now) remove(entry.key, [entry.member])
      }
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        Promise.all([...removals, redis.quit().catch(() => {})]),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, QUIT_TIMEOUT_MS) }),
      ])
      clearTimeout(timer)
    }
    this.#live.clear()
    this.#unremoved.clear()
    redis.disconnect()
  }
}

/** The user id of a member `<role>:<nodeId>:<connectionId>:<userId>` (which may itself contain ':'). */
function userIdOf (member: string): string | undefined {
  let at = -1
  for (let i = 0; i < 3; i++) {
    at = member.indexOf(':', at + 1)
    if (at === -1) return undefined
  }
  return member.slice(at + 1)
}
