/** What `pnpm bench` prints: per scenario the medians of the repetitions of each system, and the ratios against both baselines. */
import type { Measurement, SystemName } from './measure.js'
import type { Scenario } from './scenarios.js'

const GB = 1e9
const MB = 1024 * 1024

export function fixed (value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
}

export function ratio (a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a'
}

export function table (rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)))
  return rows.map((row, r) => {
    const line = row.map((cell, column) => column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)).join('   ')
    return r === 0 ? `${line}\n${'-'.repeat(line.length)}` : line
  }).join('\n')
}

/** The numbers a run is judged by. */
export interface Derived {
  deliveredFraction: number
  cpuPerGB: number
  cpuPerGBWithRedis: number
  p50: number
  p99: number
  rssMB: number
}

export function derive (m: Measurement): Derived {
  const gb = m.load.deliveredBytes / GB
  return {
    deliveredFraction: m.load.delivered / m.load.expected,
    cpuPerGB: m.serverCpuSeconds / gb,
    cpuPerGBWithRedis: (m.serverCpuSeconds + m.redisCpuSeconds) / gb,
    p50: m.load.latencyMs.p50,
    p99: m.load.latencyMs.p99,
    rssMB: m.peakRssBytes / MB,
  }
}

function median (values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Each field's median over the runs (the runs of one system in one scenario). */
export function medianOf (runs: Derived[]): Derived {
  const pick = (field: keyof Derived) => median(runs.map((run) => run[field]))
  return {
    deliveredFraction: pick('deliveredFraction'),
    cpuPerGB: pick('cpuPerGB'),
    cpuPerGBWithRedis: pick('cpuPerGBWithRedis'),
    p50: pick('p50'),
    p99: pick('p99'),
    rssMB: pick('rssMB'),
  }
}

export type Runs = Record<SystemName, Measurement[]>

/** Every counter of the cluster's runs whose name says something was dropped or failed, summed (label sets kept). */
function drops (runs: Measurement[]): string {
  const totals: Record<string, number> = {}
  for (const run of runs) {
    for (const [name, value] of Object.entries(run.counters ?? {})) {
      if (/dropped_total|publish_errors_total|reconnects_total|evict/.test(name) && value > 0) totals[name] = (totals[name] ?? 0) + value
    }
  }
  const entries = Object.entries(totals)
  return entries.length === 0 ? 'none' : entries.map(([name, value]) => `${name} ${value}`).join(', ')
}

export function report (scenario: Scenario, runs: Runs): string {
  const m = { cluster: medianOf(runs.cluster.map(derive)), naive: medianOf(runs.naive.map(derive)), ceiling: medianOf(runs.ceiling.map(derive)) }
  const spread = (system: SystemName, field: keyof Derived, digits = 2) => {
    const values = runs[system].map(derive).map((run) => run[field])
    return values.length < 2 ? '' : ` [${fixed(Math.min(...values), digits)}–${fixed(Math.max(...values), digits)}]`
  }
  const cell = (system: SystemName, field: keyof Derived, digits = 2) => `${fixed(m[system][field], digits)}${spread(system, field, digits)}`
  const rows = [
    ['median of the runs [min–max]', 'cluster (cp + 3 relays)', 'naive ws+ioredis ×3', 'ceiling (1 ws process)', 'cluster/ceiling', 'cluster/naive'],
    ['delivered fraction', cell('cluster', 'deliveredFraction', 4), cell('naive', 'deliveredFraction', 4), cell('ceiling', 'deliveredFraction', 4), '', ''],
    ['server CPU-s per delivered GB', cell('cluster', 'cpuPerGB'), cell('naive', 'cpuPerGB'), cell('ceiling', 'cpuPerGB'),
      ratio(m.cluster.cpuPerGB, m.ceiling.cpuPerGB), ratio(m.cluster.cpuPerGB, m.naive.cpuPerGB)],
    ['  + Redis CPU (shared server)', cell('cluster', 'cpuPerGBWithRedis'), cell('naive', 'cpuPerGBWithRedis'), '—',
      ratio(m.cluster.cpuPerGBWithRedis, m.ceiling.cpuPerGB), ratio(m.cluster.cpuPerGBWithRedis, m.naive.cpuPerGBWithRedis)],
    ['latency p50 (ms)', cell('cluster', 'p50'), cell('naive', 'p50'), cell('ceiling', 'p50'), ratio(m.cluster.p50, m.ceiling.p50), ratio(m.cluster.p50, m.naive.p50)],
    ['latency p99 (ms)', cell('cluster', 'p99'), cell('naive', 'p99'), cell('ceiling', 'p99'), ratio(m.cluster.p99, m.ceiling.p99), ratio(m.cluster.p99, m.naive.p99)],
    ['peak RSS, sum of processes (MB)', cell('cluster', 'rssMB', 0), cell('naive', 'rssMB', 0), cell('ceiling', 'rssMB', 0),
      ratio(m.cluster.rssMB, m.ceiling.rssMB), ratio(m.cluster.rssMB, m.naive.rssMB)],
  ]
  const noise = (system: SystemName) => {
    const busy = median(runs[system].map((run) => run.machineBusy * 100))
    const lag = median(runs[system].map((run) => run.load.senderLagMs.p99))
    return `${system}: machine ${fixed(busy, 0)}% busy, generator timer lag p99 ${fixed(lag, 1)} ms`
  }
  const closes = runs.cluster.flatMap((run) => Object.entries(run.load.closes).map(([code, n]) => `${n}×${code}`))
  const warnings = Object.entries(runs.cluster.reduce<Record<string, number>>((all, run) => {
    for (const [msg, n] of Object.entries(run.warnings)) all[msg] = (all[msg] ?? 0) + n
    return all
  }, {})).map(([msg, n]) => `${n}× "${msg}"`)
  return [
    scenario.title,
    `placement: ${scenario.placement}; ${runs.cluster.length} run(s) of each system, interleaved`,
    table(rows),
    `cluster drops and faults (all runs, warm-up included): ${drops(runs.cluster)}`,
    `cluster sockets closed during the runs: ${closes.join(' ') || 'none'}; warnings logged: ${warnings.join(', ') || 'none'}`,
    `noise: ${(['cluster', 'naive', 'ceiling'] as const).map(noise).join('; ')}`,
  ].join('\n')
}

export function summary (results: Array<{ scenario: Scenario, runs: Runs }>): string {
  const medians = results.map(({ runs }) => ({
    cluster: medianOf(runs.cluster.map(derive)), naive: medianOf(runs.naive.map(derive)), ceiling: medianOf(runs.ceiling.map(derive)),
  }))
  const row = (label: string, value: (m: typeof medians[number]) => string) => [label, ...medians.map(value)]
  return table([
    ['medians', ...results.map(({ scenario }) => `(${scenario.key})`)],
    row('CPU-s/GB cluster/ceiling', (m) => ratio(m.cluster.cpuPerGB, m.ceiling.cpuPerGB)),
    row('CPU-s/GB cluster/naive', (m) => ratio(m.cluster.cpuPerGB, m.naive.cpuPerGB)),
    row('  incl. Redis, cluster/naive', (m) => ratio(m.cluster.cpuPerGBWithRedis, m.naive.cpuPerGBWithRedis)),
    row('naive/ceiling', (m) => ratio(m.naive.cpuPerGB, m.ceiling.cpuPerGB)),
    row('p99 cluster/ceiling', (m) => ratio(m.cluster.p99, m.ceiling.p99)),
    row('p99 cluster (ms)', (m) => fixed(m.cluster.p99, 1)),
    row('delivered, cluster', (m) => `${fixed(m.cluster.deliveredFraction * 100, 2)}%`),
    row('peak RSS cluster/ceiling', (m) => ratio(m.cluster.rssMB, m.ceiling.rssMB)),
  ])
}
