import { Counter, Gauge, type Registry } from 'prom-client'

import { isKnownCloseCode } from '@streaming-service/protocol'
import { LatencyHistogram } from './latency-histogram.js'
import type { SinkDropReason } from './operator-sink.js'

/** `backplane_gap`: frames of another node's publisher that never reached this node (Redis cut the subscriber, say). */
export type DropReason = SinkDropReason | 'backplane_gap'

/** The relay's own metrics, on the process's explicit registry. */
export interface RelayMetrics {
  connections: Gauge<'role'>
  /** Counted per message (and per operator): plain numbers, read by relay_messages_total and relay_bytes_total at scrape. */
  traffic: Traffic
  dropped: Counter<'reason'>
  disconnects: Counter<'role' | 'code'>
  /** Observed per message: through `latency.recorder(path)`. */
  latency: LatencyHistogram
  operatorStarts: Counter<'start'>
  streamSyncs: Counter
  /** Set `source` to what the gauge reads at scrape time. */
  cacheBytes: Gauge & { source: () => number }
  cacheEvictions: Counter
  cacheEvictedBytes: Counter
}

export interface Traffic { messagesIn: number, bytesIn: number, messagesOut: number, bytesOut: number }

/** 1005: a close frame without a code, what most clients send; common enough to keep apart from `other`. */
const NO_STATUS = 1005

/**
 * The `code` label of `relay_disconnects_total`: a peer chooses its close
 * code, so anything outside SPEC's table is `other` (a bounded set of series).
 */
export function closeCodeLabel (code: number): string {
  return isKnownCloseCode(code) || code === NO_STATUS ? String(code) : 'other'
}

export function createRelayMetrics (registry: Registry): RelayMetrics {
  const registers = [registry]
  // A labelled prom-client inc hashes its labels: per message per operator it
  // showed in the relay's CPU profile. The counts are plain fields instead.
  const traffic: Traffic = { messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 }
  const trafficCounter = (name: string, help: string, read: (direction: 'in' | 'out') => number): Counter<'direction'> => new Counter({
    name,
    help,
    labelNames: ['direction'] as const,
    registers,
    collect () {
      this.reset()
      for (const direction of ['in', 'out'] as const) this.inc({ direction }, read(direction))
    },
  })
  trafficCounter('relay_messages_total', 'Messages received from publishers (in) and sent to operators (out)',
    (direction) => direction === 'in' ? traffic.messagesIn : traffic.messagesOut)
  trafficCounter('relay_bytes_total', 'Payload bytes received from publishers (in) and sent to operators (out)',
    (direction) => direction === 'in' ? traffic.bytesIn : traffic.bytesOut)
  const cacheBytes = Object.assign(new Gauge({
    name: 'relay_stream_cache_bytes',
    help: 'Memory held for late joiners: publishers\' messages and the chunks small ones are copied into (init segments not counted)',
    registers,
    collect () { this.set(cacheBytes.source()) },
  }), { source: () => 0 })
  return {
    traffic,
    cacheBytes,
    cacheEvictions: new Counter({
      name: 'relay_stream_cache_evictions_total',
      help: 'Late-join caches dropped because the relay\'s caches together went over RELAY_CACHE_BUDGET (the largest goes first)',
      registers,
    }),
    cacheEvictedBytes: new Counter({
      name: 'relay_stream_cache_evicted_bytes_total',
      help: 'Bytes freed by those evictions',
      registers,
    }),
    operatorStarts: new Counter({
      name: 'relay_operator_starts_total',
      help: 'Operators attached, by how their stream started: start (first byte, or an opaque stream), snapshot (init segment + group of pictures at once), joining (waited for a keyframe group or the stream state)',
      labelNames: ['start'] as const,
      registers,
    }),
    streamSyncs: new Counter({
      name: 'relay_stream_syncs_total',
      help: 'Stream states received from the publisher\'s relay, to follow a session joined mid-stream',
      registers,
    }),
    connections: new Gauge({ name: 'relay_connections', help: 'Open WebSocket connections by role', labelNames: ['role'] as const, registers }),
    dropped: new Counter({
      name: 'relay_frames_dropped_total',
      help: 'Messages not sent to operators, by reason: slow_operator and keyframe_skip per operator; backplane_gap per message another node published that never arrived here',
      labelNames: ['reason'] as const,
      registers,
    }),
    disconnects: new Counter({
      name: 'relay_disconnects_total',
      help: 'Closed WebSocket connections by role and close code (codes outside the service\'s table are "other")',
      labelNames: ['role', 'code'] as const,
      registers,
    }),
    latency: new LatencyHistogram({
      name: 'relay_latency_seconds',
      help: 'From a message reaching the publisher\'s relay to its hand-off to local operator sockets; path local or remote (via the backplane)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
  }
}
