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
  /** Redis Cluster: channels subscribed again, because their slot moved to another shard or a silent shard was reconnected. */
  resubscribed (reason: ResubscribeReason, channels: number): void
  /** Redis Cluster: frames missing between two of one origin's sequence numbers on a session (lost on the way). */
  sequenceGap (frames: number): void
}

export type ResubscribeReason = 'topology' | 'heal'

const noop = (): void => {}
export const noopBackplaneMetrics: BackplaneMetrics = {
  dropped: noop, publishError: noop, reconnect: noop, canaryRoundTrip: noop, resubscribed: noop, sequenceGap: noop,
}

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
  const resubscribes = metric(registry, 'backplane_resubscribes_total', () => new Counter({
    name: 'backplane_resubscribes_total',
    help: 'Redis Cluster: channels subscribed again on a shard, by reason (topology: the slot moved; heal: a silent shard was reconnected)',
    labelNames: ['reason'] as const,
    registers,
  }))
  const gaps = metric(registry, 'backplane_sequence_gaps_total', () => new Counter({
    name: 'backplane_sequence_gaps_total',
    help: 'Redis Cluster: frames found missing from a publisher\'s sequence on arrival (lost in a failover or slot move)',
    registers,
  }))
  return {
    dropped: (reason) => dropped.inc({ reason }),
    publishError: () => publishErrors.inc(),
    reconnect: (connection) => reconnects.inc({ connection }),
    canaryRoundTrip: (seconds) => canary.set(seconds),
    resubscribed: (reason, channels) => resubscribes.inc({ reason }, channels),
    sequenceGap: (frames) => gaps.inc(frames),
  }
}
