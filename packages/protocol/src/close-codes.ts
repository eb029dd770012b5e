/**
 * WebSocket close codes of the stream route (SPEC §5). Every refusal and every
 * server-side close is one of these, with a short reason, so browsers can see
 * why. The Python client mirrors this table (clients/python/psds_stream/errors.py);
 * a test checks the two agree.
 */
export const CloseCode = {
  normal: 1000,
  /** The node is shutting down or draining: reconnect (elsewhere). */
  goingAway: 1001,
  /** No close frame: the connection dropped (seen by clients, never sent). */
  abnormal: 1006,
  /** A message larger than the node accepts; nothing of it was relayed. */
  tooLarge: 1009,
  internalError: 1011,
  /** A dependency (PostgreSQL, the backplane) is unavailable, or the node is full: try again later. */
  tryAgainLater: 1013,
  /** To operators: the publisher started a new WebM/MP4 stream (or frames were lost): reconnect to a fresh player. */
  streamRestarted: 4205,
  /** Malformed session id or user id. */
  badRequest: 4400,
  /** Missing or wrong stream key; missing, invalid or expired operator token. */
  unauthorized: 4401,
  /** A valid credential that does not grant this connection (another session or user, a revoked operator). */
  forbidden: 4403,
  notFound: 4404,
  /** Too many operators, or this publisher connection was replaced by a newer one. */
  conflict: 4409,
  /** The session is finished. */
  finished: 4410,
  /** This operator stayed too slow to keep up and was cut off. */
  tooSlow: 4429,
} as const

export type CloseCodeName = keyof typeof CloseCode
export type CloseCodeValue = typeof CloseCode[CloseCodeName]

const known = new Set<number>(Object.values(CloseCode))

/** Whether `code` is one of the table's codes (anything else a peer sends is "other" to metrics). */
export function isKnownCloseCode (code: number): code is CloseCodeValue {
  return known.has(code)
}

/** The reasons the service closes sockets with (short: a close frame carries at most 123 bytes). */
export const CloseReason = {
  shuttingDown: 'server shutting down: reconnect',
  draining: 'node is draining: reconnect elsewhere',
  nodeFull: 'node is at its connection limit: try again later',
  replaced: 'replaced by a newer publisher connection',
  finished: 'session finished',
  streamRestarted: 'stream restarted: reconnect',
  streamInterrupted: 'stream interrupted: reconnect',
  tooSlow: 'too slow: could not keep up with the stream',
  revoked: 'operator revoked',
} as const

/** Longest close reason in UTF-8 bytes (RFC 6455: 125-byte control frame payload minus the 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123

/** `text` cut to fit a close frame (on a character boundary, with "..." when cut). */
export function closeReason (text: string): string {
  if (utf8Length(text) <= MAX_CLOSE_REASON_BYTES) return text
  let bytes = 0
  let end = 0
  for (const char of text) {
    const length = utf8Length(char)
    if (bytes + length > MAX_CLOSE_REASON_BYTES - 3) break
    bytes += length
    end += char.length
  }
  return text.slice(0, end) + '...'
}

function utf8Length (text: string): number {
  let bytes = 0
  for (const char of text) {
    const point = char.codePointAt(0)!
    bytes += point < 0x80 ? 1 : point < 0x800 ? 2 : point < 0x10000 ? 3 : 4
  }
  return bytes
}
