import { CloseCode } from '@streaming-service/protocol'

export { CloseCode }

/** What a client does after a close: give up, reconnect at once, or reconnect after a backoff delay. */
export type CloseAction = 'stop' | 'reconnect-now' | 'backoff'

// Retrying these cannot succeed: the request itself is wrong, the credential does not grant it, or the session is over.
const final = new Set<number>([CloseCode.badRequest, CloseCode.unauthorized, CloseCode.forbidden, CloseCode.notFound, CloseCode.conflict, CloseCode.finished])

export function closeAction (code: number): CloseAction {
  if (final.has(code)) return 'stop'
  if (code === CloseCode.streamRestarted) return 'reconnect-now'
  return 'backoff'
}
