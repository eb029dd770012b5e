/**
 * What the orchestrator (run.ts) and the load generator (load.ts) say to each
 * other over the fork IPC channel.
 */

/** One session of a scenario: where its publisher and its operators connect. */
export interface PlannedSession {
  publisherUrl: string
  operatorUrls: string[]
}

export interface LoadPlan {
  sessions: PlannedSession[]
  /** Bytes per message, the 17-byte header included. */
  messageSize: number
  fps: number
  warmupMs: number
  durationMs: number
  /** After the last measured send, how long to wait for stragglers. */
  drainMs: number
}

export interface LoadResult {
  expected: number
  delivered: number
  deliveredBytes: number
  latencyMs: { p50: number, p99: number, max: number }
  outOfOrder: number
  wrongSize: number
  /** Sockets that closed during the run, by close code. */
  closes: Record<string, number>
  connectMs: number
  /** Measured window of the generator itself. */
  cpuSeconds: number
  wallSeconds: number
  eventLoopUtilization: number
  /** How late the publishers' timers fired against their schedule. */
  senderLagMs: { p99: number, max: number }
  /** Largest `bufferedAmount` of a publisher socket: the server stopped reading it (TCP backpressure). */
  publisherBacklogBytes: number
}

export type ToLoad =
  | { type: 'run', plan: LoadPlan }
  | { type: 'ack' }

export type FromLoad =
  | { type: 'mark', phase: 'start' | 'end' }
  | { type: 'result', result: LoadResult }
  | { type: 'error', message: string }

/**
 * Payload layout: float64 LE send time (performance.now() of the generator,
 * the same process as every receiver), uint32 LE sequence number, uint32 LE
 * session index, one flag byte (1 = warm-up, not counted), then filler.
 */
export const HEADER_BYTES = 17
