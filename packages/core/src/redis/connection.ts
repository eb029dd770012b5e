import type { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Cluster, Redis } from 'ioredis'
import type { Logger } from '../logger.js'

/** Milliseconds before reconnect attempt `attempt` (1-based): 50, 100, 200, 400… plus jitter, never above 500. */
export function reconnectDelay (attempt: number): number {
  return Math.min(50 * 2 ** Math.min(Math.max(attempt, 1) - 1, 3), 400) + Math.floor(Math.random() * 100)
}

export interface ConnectionWatchOptions {
  log: Logger
  /** What the log lines call the connection: `<subject> connection lost`, `… restored`, `… error`. */
  subject: string
  /** Fields for every line (e.g. which connection of several). */
  fields?: () => Record<string, unknown>
  /** After close(): nothing is logged any more. */
  closed: () => boolean
  /** Every time the connection becomes ready (the first time too), after the state is updated. */
  onReady?: (restored: boolean) => void
  onClose?: () => void
  /** Extra fields for the "restored" line. */
  restoredFields?: () => Record<string, unknown>
  /** Suffix of the "restored" message, e.g. "; rewriting this node's entries". */
  restoredNote?: string
}

export interface ConnectionWatch {
  /** Whether the connection was ever ready: before that, "down" is a start that has not finished. */
  readonly everReady: boolean
}

/**
 * The life of one ioredis connection in the logs: one warning when it is
 * lost, one when it errors (every failed reconnect attempt raises an error:
 * the rest of an outage is debug), one info line with the downtime when it is
 * back.
 */
export function watchConnection (connection: EventEmitter, options: ConnectionWatchOptions): ConnectionWatch {
  const { log, subject } = options
  const fields = options.fields ?? (() => ({}))
  const state = { everReady: false, downSince: undefined as number | undefined, errorLogged: false }
  connection.on('ready', () => {
    const restored = state.everReady
    if (restored) {
      const downMs = state.downSince === undefined ? undefined : Math.round(performance.now() - state.downSince)
      log.info({ ...fields(), downMs, ...options.restoredFields?.() }, `${subject} connection restored${options.restoredNote ?? ''}`)
    }
    state.everReady = true
    state.downSince = undefined
    state.errorLogged = false
    options.onReady?.(restored)
  })
  connection.on('close', () => {
    options.onClose?.()
    if (options.closed() || state.downSince !== undefined) return
    state.downSince = performance.now()
    log.warn(fields(), `${subject} connection lost`)
  })
  connection.on('error', (err: Error) => {
    if (options.closed()) return
    if (state.errorLogged) {
      log.debug({ err, ...fields() }, `${subject} connection error`)
      return
    }
    state.errorLogged = true
    log.warn({ err, ...fields() }, `${subject} connection error`)
  })
  return { get everReady () { return state.everReady } }
}

/** Sends QUIT after `pending` settle (answered or not) and cuts the socket after `timeoutMs` at the latest. */
export async function quitWithin (connection: Redis | Cluster, timeoutMs: number, pending: Array<Promise<unknown>> = []): Promise<void> {
  if (connection.status === 'ready') {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all([...pending, connection.quit().catch(() => {})]),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) }),
    ])
    clearTimeout(timer)
  }
  connection.disconnect()
}
