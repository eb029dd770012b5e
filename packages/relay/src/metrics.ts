import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export type DropReason = 'slow_operator'

/** The relay's own metrics, on the process's explicit registry. */
export interface RelayMetrics {
  connections: Gauge<'role'>
  messages: Counter<'direction'>
  bytes: Counter<'direction'>
  dropped: Counter<'reason'>
  disconnects: Counter<'role' | 'code'>
  latency: Histogram<'path'>
}

export function createRelayMetrics (registry: Registry): RelayMetrics {
  const registers = [registry]
  return {
    connections: new Gauge({ name: 'relay_connections', help: 'Open WebSocket connections by role', labelNames: ['role'] as const, registers }),
    messages: new Counter({
      name: 'relay_messages_total',
      help: 'Messages received from publishers (in) and sent to operators (out)',
      labelNames: ['direction'] as const,
      registers,
    }),
    bytes: new Counter({
      name: 'relay_bytes_total',
      help: 'Payload bytes received from publishers (in) and sent to operators (out)',
      labelNames: ['direction'] as const,
      registers,
    }),
    dropped: new Counter({
      name: 'relay_frames_dropped_total',
      help: 'Messages not sent to an operator, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    disconnects: new Counter({
      name: 'relay_disconnects_total',
      help: 'Closed WebSocket connections by role and close code',
      labelNames: ['role', 'code'] as const,
      registers,
    }),
    latency: new Histogram({
      name: 'relay_latency_seconds',
      help: 'From a message reaching the publisher\'s relay to its hand-off to local operator sockets; path local or remote (via the backplane)',
      labelNames: ['path'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
  }
}
