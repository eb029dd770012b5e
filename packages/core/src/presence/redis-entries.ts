import { randomBytes } from 'node:crypto'
import type { PresenceRole } from './types.js'

/**
 * Every presence key is named here: one sorted set per session. On Redis
 * Cluster the session id is the hash tag, as in the session's channel, so a
 * session's key and channel share a slot.
 */
export function presenceKey (prefix: string, sessionId: string, hashTag = false): string {
  return hashTag ? `${prefix}presence:{${sessionId}}` : `${prefix}presence:${sessionId}`
}

/** Members per ZADD/ZREM, so a session with thousands of connections never makes one huge command. */
export const BATCH = 512

export interface Entry {
  readonly key: string
  /** `<role>:<nodeId>:<connectionId>:<userId>`: the user id may contain ':', so it comes last. */
  readonly member: string
  /** The latest expiry this node has sent for the entry (0: never sent): past it, Redis no longer shows it. */
  until: number
}

/** The user id of a member `<role>:<nodeId>:<connectionId>:<userId>` (which may itself contain ':'). */
export function userIdOf (member: string): string | undefined {
  let at = -1
  for (let i = 0; i < 3; i++) {
    at = member.indexOf(':', at + 1)
    if (at === -1) return undefined
  }
  return member.slice(at + 1)
}

/** The commands of a pipeline this table fills (ioredis's Pipeline has them all). */
export interface EntryWriter {
  zadd (key: string, ...scoresAndMembers: Array<number | string>): unknown
  pexpire (key: string, ms: number): unknown
  zremrangebyscore (key: string, min: number | string, max: number | string): unknown
}

/**
 * This node's presence entries, the source of truth for every write to Redis:
 * the live connections by key, and the left ones whose removal still has to
 * reach Redis.
 */
export class EntryTable {
  readonly #prefix: string
  readonly #nodeId: string
  /** Per process, so connection ids never repeat those of an earlier run with the same node id. */
  readonly #runId = randomBytes(4).toString('hex')
  #connections = 0
  /** key → member → entry */
  readonly #live = new Map<string, Map<string, Entry>>()
  /** Left entries whose ZREM could not be sent or failed: retried until done or until they expire anyway. */
  readonly #unremoved = new Map<string, Entry>()

  readonly #hashTag: boolean

  constructor (prefix: string, nodeId: string, hashTag = false) {
    this.#prefix = prefix
    this.#nodeId = nodeId
    this.#hashTag = hashTag
  }

  get liveCount (): number {
    let count = 0
    for (const members of this.#live.values()) count += members.size
    return count
  }

  get unremovedCount (): number { return this.#unremoved.size }

  add (sessionId: string, role: PresenceRole, userId: string): Entry {
    const key = presenceKey(this.#prefix, sessionId, this.#hashTag)
    const connectionId = `${this.#runId}.${(this.#connections++).toString(36)}`
    const entry: Entry = { key, member: `${role}:${this.#nodeId}:${connectionId}:${userId}`, until: 0 }
    let members = this.#live.get(key)
    if (members === undefined) {
      members = new Map()
      this.#live.set(key, members)
    }
    members.set(entry.member, entry)
    return entry
  }

  delete (entry: Entry): void {
    const members = this.#live.get(entry.key)
    if (members !== undefined && members.delete(entry.member) && members.size === 0) this.#live.delete(entry.key)
  }

  /** The entry's removal must still reach Redis. */
  unremoved (entry: Entry): void {
    this.#unremoved.set(entry.member, entry)
  }

  /**
   * Queues a rewrite of every live entry valid until `now + ttlMs` (one ZADD
   * per key and batch), re-arms each key's expiry, and prunes entries that
   * expired a whole ttl ago (dead nodes' leftovers: the margin is for clocks
   * that disagree). Returns false when there is nothing live.
   */
  writeAll (writer: EntryWriter, now: number, ttlMs: number): boolean {
    if (this.#live.size === 0) return false
    const until = now + ttlMs
    for (const [key, members] of this.#live) {
      let args: Array<number | string> = []
      for (const entry of members.values()) {
        entry.until = until
        args.push(until, entry.member)
        if (args.length === BATCH * 2) {
          writer.zadd(key, ...args)
          args = []
        }
      }
      if (args.length > 0) writer.zadd(key, ...args)
      writer.pexpire(key, ttlMs * 2)
      writer.zremrangebyscore(key, '-inf', now - ttlMs)
    }
    return true
  }

  /** Takes the pending removals still worth sending (not expired by `now`), as batches of members per key. */
  takeRemovals (now: number): Array<{ key: string, entries: Entry[] }> {
    const byKey = new Map<string, Entry[]>()
    for (const entry of this.#unremoved.values()) {
      if (entry.until <= now) continue
      const entries = byKey.get(entry.key)
      if (entries === undefined) byKey.set(entry.key, [entry])
      else entries.push(entry)
    }
    this.#unremoved.clear()
    const batches: Array<{ key: string, entries: Entry[] }> = []
    for (const [key, entries] of byKey) {
      for (let i = 0; i < entries.length; i += BATCH) batches.push({ key, entries: entries.slice(i, i + BATCH) })
    }
    return batches
  }

  /** Everything this node should take out of Redis when it stops (live and pending removals), in batches; empties the table. */
  drain (now: number): Array<{ key: string, members: string[] }> {
    const batches: Array<{ key: string, members: string[] }> = []
    for (const [key, members] of this.#live) {
      const all = [...members.keys()]
      for (let i = 0; i < all.length; i += BATCH) batches.push({ key, members: all.slice(i, i + BATCH) })
    }
    for (const { key, entries } of this.takeRemovals(now)) batches.push({ key, members: entries.map((entry) => entry.member) })
    this.#live.clear()
    return batches
  }
}
