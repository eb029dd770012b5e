import { BackplaneUnavailableError } from '../errors.js'
import type { Leave, Presence, PresenceRole } from './types.js'

interface SessionPresence {
  /** Open publisher connections. */
  publishers: number
  /** user id → open operator connections. */
  operators: Map<string, number>
}

const noop: Leave = () => {}

/**
 * Presence of a single node (the `api` without REDIS_URL): connection counts
 * in process memory. Nothing can die without taking the counts with it, so
 * nothing expires.
 */
export class MemoryPresence implements Presence {
  readonly kind = 'memory' as const
  readonly #sessions = new Map<string, SessionPresence>()
  #closed = false

  enter (sessionId: string, role: PresenceRole, userId: string): Leave {
    if (this.#closed) return noop
    let session = this.#sessions.get(sessionId)
    if (session === undefined) {
      session = { publishers: 0, operators: new Map() }
      this.#sessions.set(sessionId, session)
    }
    const entered = session
    if (role === 'publisher') entered.publishers++
    else entered.operators.set(userId, (entered.operators.get(userId) ?? 0) + 1)
    let active = true
    return () => {
      if (!active) return
      active = false
      // After close() the counts are gone.
      if (this.#sessions.get(sessionId) !== entered) return
      if (role === 'publisher') {
        entered.publishers--
      } else {
        const left = (entered.operators.get(userId) ?? 1) - 1
        if (left > 0) entered.operators.set(userId, left)
        else entered.operators.delete(userId)
      }
      if (entered.publishers === 0 && entered.operators.size === 0) this.#sessions.delete(sessionId)
    }
  }

  async publisherOnline (sessionId: string): Promise<boolean> {
    this.#assertOpen()
    return (this.#sessions.get(sessionId)?.publishers ?? 0) > 0
  }

  async onlineOperators (sessionId: string): Promise<Set<string>> {
    this.#assertOpen()
    return new Set(this.#sessions.get(sessionId)?.operators.keys())
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#sessions.clear()
  }

  #assertOpen (): void {
    if (this.#closed) throw new BackplaneUnavailableError('presence is closed')
  }
}
