/** WebSocket close codes of SPEC §5. Reasons stay short: a close frame carries at most 123 bytes of them. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  tooLarge: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
  /** To operators: the publisher started a new WebM/MP4 stream (or frames were lost); reconnect to a new player. */
  streamRestarted: 4205,
  badRequest: 4400,
  unauthorized: 4401,
  notFound: 4404,
  conflict: 4409,
  finished: 4410,
  tooSlow: 4429,
} as const

export function closeReason (text: string): string {
  const bytes = Buffer.from(text)
  return bytes.length <= 123 ? text : bytes.subarray(0, 120).toString() + '...'
}
