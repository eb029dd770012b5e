import { Counter, Gauge, type Registry } from 'prom-client'
import type { DropReason } from './types.js'

export type ConnectionRole = 'publisher' | 'subscriber'

/**
 * The backplane's Prometheus metrics, on the registry the process passes in
 * (never the global one). Only rare events (drops, errors, reconnects) touch
 * prom-client; the per-frame path counts in plain numbers (Backplane#stats).
 */
export interface BackplaneMetrics {
  dropped (reason: DropReason): void
  publishError (): void
  reconnect (connection: ConnectionRole): void
  canaryRoundTrip (seconds: number): void
}

const noop = (): void => {}
export const noopBackplaneMetrics: BackplaneMetrics = { dropped: noop, publishError: noop, reconnect: noop, canaryRoundTrip: noop }

/** Reuses metrics already on the registry, so several backplanes may share one (tests). */
function metric<T> (registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create()
}

export function createBackplaneMetrics (registry?: Registry): BackplaneMetrics {
  if (registry === undefined) return noopBackplaneMetrics
  const registers = [registry]
  const dropped = metric(registry, 'backplane_frames_dropped_total', () => new Counter({
    name: 'backplane_frames_dropped_total',
    help: 'Frames the backplane did not publish, by reason (backpressure, disconnected, closed, invalid)',
    labelNames: ['reason'] as const,
    registers,
  }))
  const publishErrors = metric(registry, 'backplane_publish_errors_total', () => new Counter({
    name: 'backplane_publish_errors_total',
    help: 'Backplane publishes that were sent and then failed (connection lost, timeout)',
    registers,
  }))
  const reconnects = metric(registry, 'backplane_reconnects_total', () => new Counter({
    name: 'backplane_reconnects_total',
    help: 'Backplane connections re-established after being lost, by connection',
    labelNames: ['connection'] as const,
    registers,
  }))
  const canary = metric(registry, 'backplane_canary_round_trip_seconds', () => new Gauge({
    name: 'backplane_canary_round_trip_seconds',
    help: 'Round trip of the last readiness canary published and received back through the backplane',
    registers,
  }))
  return {
    dropped: (reason) => dropped.inc({ reason }),
    publishError: () => publishErrors.inc(),
    reconnect: (connection) => reconnects.inc({ connection }),
    canaryRoundTrip: (seconds) => canary.set(seconds),
  }
}
