import type { Logger, Presence, SessionStore } from '@streaming-service/core'

export interface ReconcilerOptions {
  sessions: SessionStore
  presence: Presence
  /** PRESENCE_TTL: how long a dead relay's publisher stays "online", and how often to look. */
  intervalMs: number
  logger: Logger
}

/**
 * A relay that dies takes its publisher's socket with it but cannot mark the
 * session `waiting`. Every interval, active sessions whose publisher is no
 * longer present on any relay go back to `waiting` (unless a newer publisher
 * took over). Sessions touched within the interval are left alone: their
 * publisher's presence may not be written yet. Idempotent, so several
 * control-plane replicas may run it.
 */
export function startReconciler (options: ReconcilerOptions): () => void {
  const { sessions, presence, logger } = options
  let running = false
  const tick = async (): Promise<void> => {
    if (running) return
    running = true
    try {
      for (const { id, epoch } of await sessions.activeSince(options.intervalMs)) {
        if (await presence.publisherOnline(id)) continue
        if (await sessions.markWaiting(id, epoch)) logger.info({ sessionId: id, epoch }, 'publisher gone with its relay: session waiting')
      }
    } catch (err) {
      logger.debug({ err }, 'session reconciliation skipped')
    } finally {
      running = false
    }
  }
  const timer = setInterval(() => { void tick() }, options.intervalMs)
  timer.unref()
  return () => clearInterval(timer)
}
