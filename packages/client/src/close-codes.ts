/** WebSocket close codes of the service (SPEC §5), plus 4205 for restarted streams. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  abnormal: 1006,
  tooLarge: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  /** The publisher started a new stream: reconnect at once to get its new init segment. */
  streamRestarted: 4205,
  badRequest: 4400,
  unauthorized: 4401,
  notFound: 4404,
  /** Too many operators, or this publisher connection was replaced by a newer one. */
  conflict: 4409,
  finished: 4410,
  tooSlow: 4429,
} as const

/** What a client does after a close: give up, reconnect at once, or reconnect after a backoff delay. */
export type CloseAction = 'stop' | 'reconnect-now' | 'backoff'

// Retrying these cannot succeed: the request itself is wrong or the session is over.
const final = new Set<number>([CloseCode.badRequest, CloseCode.unauthorized, CloseCode.notFound, CloseCode.conflict, CloseCode.finished])

export function closeAction (code: number): CloseAction {
  if (final.has(code)) return 'stop'
  if (code === CloseCode.streamRestarted) return 'reconnect-now'
  return 'backoff'
}
