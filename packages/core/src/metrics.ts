import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'

/**
 * Every process has one explicit registry: default process metrics plus what
 * each role adds. Nothing is registered on prom-client's global registry.
 */
export interface Metrics {
  registry: Registry
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>
}

export function createMetrics (role: string): Metrics {
  const registry = new Registry()
  registry.setDefaultLabels({ role })
  collectDefaultMetrics({ register: registry })
  const httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  })
  return { registry, httpRequestDuration }
}
