export interface BackoffOptions {
  /** First delay ceiling (ms). */
  initialMs: number
  /** Largest delay ceiling (ms). */
  maxMs: number
  factor: number
}

export const defaultBackoff: Readonly<BackoffOptions> = { initialMs: 500, maxMs: 10_000, factor: 2 }

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential ceiling with
 * "equal jitter" (between half the ceiling and the ceiling), so clients cut
 * off together by one node do not come back in lockstep, and never with 0 ms.
 */
export function backoffDelay (attempt: number, options: Readonly<BackoffOptions> = defaultBackoff, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * options.factor ** attempt)
  return Math.round(ceiling / 2 + random() * ceiling / 2)
}
