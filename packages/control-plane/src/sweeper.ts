import type { Logger, SessionStore } from '@streaming-service/core'

export interface SweeperOptions {
  sessions: SessionStore
  /** SESSION_IDLE_TTL: sessions that never became active are finished after this; 0: never. */
  idleTtlMs: number
  /** SESSION_RETENTION: finished sessions are deleted after this; 0: kept. */
  retentionMs: number
  /** SESSION_SWEEP_INTERVAL */
  intervalMs: number
  /** A session was finished here: its sockets close on every relay. */
  onFinished: (sessionId: string) => void
  logger: Logger
}

/** Rows per statement, so a backlog is worked off in short transactions. */
const BATCH = 500

/**
 * Sessions do not live forever (SPEC §10): every interval, sessions that
 * never became active within SESSION_IDLE_TTL are finished (their stream key
 * dies with them) and finished sessions older than SESSION_RETENTION are
 * deleted, in batches. Any number of control planes may run it: each row is
 * taken by one statement (`for update skip locked`), the others skip it.
 */
export function startSweeper (options: SweeperOptions): () => Promise<void> {
  const { sessions, logger } = options
  const finishIdle = async (): Promise<number> => {
    const ids = await sessions.finishNeverActive(options.idleTtlMs, BATCH)
    for (const id of ids) options.onFinished(id)
    if (ids.length > 0) logger.info({ sessions: ids.length, idleTtlMs: options.idleTtlMs }, 'finished sessions that never became active')
    return ids.length
  }
  const deleteExpired = async (): Promise<number> => {
    const deleted = await sessions.deleteFinished(options.retentionMs, BATCH)
    if (deleted > 0) logger.info({ sessions: deleted, retentionMs: options.retentionMs }, 'deleted finished sessions past their retention')
    return deleted
  }
  const sweep = async (): Promise<void> => {
    try {
      if (options.idleTtlMs > 0) while (await finishIdle() === BATCH);
      if (options.retentionMs > 0) while (await deleteExpired() === BATCH);
    } catch (err) {
      logger.warn({ err }, 'session sweep failed; trying again at the next interval')
    }
  }
  let running: Promise<void> | undefined
  const timer = setInterval(() => { running ??= sweep().finally(() => { running = undefined }) }, options.intervalMs)
  timer.unref()
  return async () => {
    clearInterval(timer)
    await running
  }
}
