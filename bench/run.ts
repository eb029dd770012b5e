/**
 * `pnpm bench`: the relay cluster (control plane + 3 relays, real Redis)
 * against the ceiling (one plain `ws` broadcast process), same scenarios,
 * same run, same load generator. Prints absolute numbers and ratios
 * cluster/ceiling; no targets (this machine is shared and noisy: compare
 * ratios, not absolutes).
 *
 * BENCH_DURATION=<seconds> shortens or lengthens each measured run (default 15).
 */
import { fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { CLI, TEST_REDIS_URL } from '@streaming-service/testing'
import {
  BenchDependencyError, checkRedis, cpuSeconds, machineCpu, prepareDatabase, redisCpuSeconds, RssSampler, runQueueSeconds, startBenchCluster, startCeiling,
  Teardowns, type SystemUnderTest,
} from './harness.js'
import type { FromLoad, LoadResult, PlannedSession, ToLoad } from './protocol.js'

const RELAYS = 3
const SPEC_DURATION_MS = 15_000
const DURATION_MS = Number(process.env.BENCH_DURATION ?? SPEC_DURATION_MS / 1000) * 1000
if (!(DURATION_MS >= 1000)) {
  process.stderr.write(`bench: BENCH_DURATION=${JSON.stringify(process.env.BENCH_DURATION)}: seconds, at least 1\n`)
  process.exit(2)
}
const WARMUP_MS = 2000
const DRAIN_MS = 2000

interface Scenario {
  key: string
  title: string
  placement: string
  sessions: number
  messageSize: number
  fps: number
  publisherRelay (session: number): number
  operatorRelays (session: number): number[]
}

const allScenarios: Scenario[] = [
  {
    key: 'a',
    title: `(a) fan-out: 1 publisher → 200 operators, 16 KB @ 30 fps, ${DURATION_MS / 1000} s`,
    placement: 'publisher on relay 1; operators round-robin over relays 1–3 (67 local, 133 via Redis)',
    sessions: 1,
    messageSize: 16 * 1024,
    fps: 30,
    publisherRelay: () => 0,
    operatorRelays: () => Array.from({ length: 200 }, (_, j) => j % RELAYS),
  },
  {
    key: 'b',
    title: `(b) many sessions: 100 × (1 publisher → 2 operators), 8 KB @ 25 fps, ${DURATION_MS / 1000} s`,
    placement: 'session i: publisher on relay i mod 3, its operators on the two other relays (every frame via Redis)',
    sessions: 100,
    messageSize: 8 * 1024,
    fps: 25,
    publisherRelay: (i) => i % RELAYS,
    operatorRelays: (i) => [(i + 1) % RELAYS, (i + 2) % RELAYS],
  },
]

/** BENCH_ONLY=a or b runs one scenario (for working on it; `pnpm bench` runs both). */
const scenarios = allScenarios.filter((scenario) => process.env.BENCH_ONLY === undefined || process.env.BENCH_ONLY === scenario.key)

type SystemName = 'cluster' | 'ceiling'

interface Measurement {
  load: LoadResult
  serverCpuSeconds: number
  perProcessCpuSeconds: number[]
  redisCpuSeconds: number
  peakRssBytes: number
  idleRssBytes: number
  peakRssPerProcess: number[]
  machineBusy: number
  /** Machine CPU-seconds not used by the servers, Redis, the generator or this process: other users of the box. */
  othersCpuSeconds: number
  /** Seconds the main threads waited for a CPU while runnable, per process (servers summed). */
  runQueueWait: { servers: number, load: number }
  counters: Record<string, number> | undefined
  warnings: Record<string, number>
}

const active = new Set<Teardowns>()

async function mapLimit<T> (count: number, limit: number, fn: (index: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const index = next++
      results[index] = await fn(index)
    }
  }))
  return results
}

const runStarted = performance.now()
function progress (text: string): void {
  process.stderr.write(`[${((performance.now() - runStarted) / 1000).toFixed(1).padStart(5)} s] ${text}\n`)
}

async function measure (system: SystemName, scenario: Scenario, dbEnv: Record<string, string>): Promise<Measurement> {
  const scope = new Teardowns()
  active.add(scope)
  try {
    progress(`(${scenario.key}) ${system}: starting`)
    const sut: SystemUnderTest = system === 'cluster'
      ? await startBenchCluster(scope, { dbEnv, relays: RELAYS, publisherRelay: scenario.publisherRelay })
      : await startCeiling(scope)
    const sessions: PlannedSession[] = await mapLimit(scenario.sessions, 10, async (i) => await sut.openSession(i, scenario.operatorRelays(i)))
    progress(`(${scenario.key}) ${system}: ${sessions.length} session(s) ready; connecting and streaming`)
    const rss = new RssSampler(sut.pids)
    scope.teardown(() => rss.stop())

    const load = fork(fileURLToPath(new URL('./load.ts', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    scope.teardown(() => { if (load.exitCode === null && load.signalCode === null) load.kill('SIGKILL') })
    const snapshot = async () => {
      const perProcess = sut.pids.map(cpuSeconds)
      const own = [load.pid!, process.pid].reduce((sum, pid) => sum + cpuSeconds(pid), 0)
      const waited = { servers: sut.pids.reduce((sum, pid) => sum + runQueueSeconds(pid), 0), load: runQueueSeconds(load.pid!) }
      const machine = machineCpu()
      return { perProcess, own, waited, machine, redis: await redisCpuSeconds(TEST_REDIS_URL) }
    }
    let before: Awaited<ReturnType<typeof snapshot>> | undefined
    let after: Awaited<ReturnType<typeof snapshot>> | undefined
    const result = await new Promise<LoadResult>((resolve, reject) => {
      // Connecting hundreds of sockets on a busy box takes seconds; a minute past the plan means something hangs.
      const limitMs = WARMUP_MS + DURATION_MS + DRAIN_MS + 60_000
      const deadline = setTimeout(() => reject(new Error(`(${scenario.key}) ${system}: no result within ${limitMs / 1000} s`)), limitMs)
      scope.teardown(() => clearTimeout(deadline))
      load.on('message', (message: FromLoad) => {
        switch (message.type) {
          case 'mark':
            progress(`(${scenario.key}) ${system}: ${message.phase === 'start' ? 'measuring' : 'measured'}`)
            void snapshot().then((taken) => {
              if (message.phase === 'start') before = taken
              else after = taken
              load.send({ type: 'ack' } satisfies ToLoad)
            }, reject)
            break
          case 'result':
            resolve(message.result)
            break
          case 'error':
            reject(new Error(`load generator: ${message.message}`))
            break
        }
      })
      load.once('exit', (code, signal) => reject(new Error(`load generator exited (${code ?? signal}) without a result`)))
      load.send({
        type: 'run',
        plan: { sessions, messageSize: scenario.messageSize, fps: scenario.fps, warmupMs: WARMUP_MS, durationMs: DURATION_MS, drainMs: DRAIN_MS },
      } satisfies ToLoad)
    })
    const peakRssBytes = rss.stop()
    const perProcessCpuSeconds = after!.perProcess.map((cpu, i) => cpu - before!.perProcess[i]!)
    const serverCpuSeconds = perProcessCpuSeconds.reduce((a, b) => a + b, 0)
    const redisCpu = after!.redis - before!.redis
    return {
      load: result,
      serverCpuSeconds,
      perProcessCpuSeconds,
      redisCpuSeconds: redisCpu,
      peakRssBytes,
      idleRssBytes: rss.initialBytes,
      peakRssPerProcess: rss.peakPerProcess,
      machineBusy: (after!.machine.busy - before!.machine.busy) / (after!.machine.total - before!.machine.total),
      runQueueWait: { servers: after!.waited.servers - before!.waited.servers, load: after!.waited.load - before!.waited.load },
      othersCpuSeconds: (after!.machine.busy - before!.machine.busy) - serverCpuSeconds - redisCpu - (after!.own - before!.own),
      counters: await sut.counters(),
      warnings: sut.warnings(),
    }
  } finally {
    await scope.run()
    active.delete(scope)
  }
}

// ---- Output ---------------------------------------------------------------

const GB = 1e9
const MB = 1024 * 1024

function fixed (value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a'
}

function ratio (a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : 'n/a'
}

function table (rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)))
  return rows.map((row, r) => {
    const line = row.map((cell, column) => column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)).join('   ')
    return r === 0 ? `${line}\n${'-'.repeat(line.length)}` : line
  }).join('\n')
}

interface Derived {
  deliveredFraction: number
  cpuPerGB: number
  cpuPerGBWithRedis: number
  p50: number
  p99: number
  rssMB: number
}

function derive (m: Measurement): Derived {
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

function report (scenario: Scenario, cluster: Measurement, ceiling: Measurement): string {
  const c = derive(cluster)
  const k = derive(ceiling)
  const closes = (m: Measurement) => Object.entries(m.load.closes).map(([code, n]) => `${n}×${code}`).join(' ') || 'none'
  const rows = [
    ['', `cluster (cp + ${RELAYS} relays)`, 'ceiling (1 ws process)', 'cluster/ceiling'],
    ['delivered / expected', `${cluster.load.delivered}/${cluster.load.expected} (${fixed(c.deliveredFraction * 100)}%)`,
      `${ceiling.load.delivered}/${ceiling.load.expected} (${fixed(k.deliveredFraction * 100)}%)`, ratio(c.deliveredFraction, k.deliveredFraction)],
    ['latency p50 (ms)', fixed(c.p50), fixed(k.p50), ratio(c.p50, k.p50)],
    ['latency p99 (ms)', fixed(c.p99), fixed(k.p99), ratio(c.p99, k.p99)],
    ['latency max (ms)', fixed(cluster.load.latencyMs.max, 1), fixed(ceiling.load.latencyMs.max, 1), ''],
    ['server CPU-s per delivered GB', fixed(c.cpuPerGB), fixed(k.cpuPerGB), ratio(c.cpuPerGB, k.cpuPerGB)],
    ['  + Redis CPU (shared server)', fixed(c.cpuPerGBWithRedis), '—', ratio(c.cpuPerGBWithRedis, k.cpuPerGB)],
    ['server CPU-s in window [cp + relays]', `${fixed(cluster.serverCpuSeconds)} [${cluster.perProcessCpuSeconds.map((s) => fixed(s)).join(' + ')}]`,
      fixed(ceiling.serverCpuSeconds), ''],
    ['peak RSS, sum (MB)', fixed(c.rssMB, 1), fixed(k.rssMB, 1), ratio(c.rssMB, k.rssMB)],
    ['  per process peak (MB)', cluster.peakRssPerProcess.map((bytes) => fixed(bytes / MB, 0)).join(' + '), fixed(ceiling.peakRssPerProcess[0]! / MB, 0), ''],
    ['  idle before connect (MB)', fixed(cluster.idleRssBytes / MB, 1), fixed(ceiling.idleRssBytes / MB, 1), ratio(cluster.idleRssBytes, ceiling.idleRssBytes)],
    ['delivered GB (window s)', `${fixed(cluster.load.deliveredBytes / GB, 3)} (${fixed(cluster.load.wallSeconds, 1)})`,
      `${fixed(ceiling.load.deliveredBytes / GB, 3)} (${fixed(ceiling.load.wallSeconds, 1)})`, ''],
    ['out of order / wrong payload', `${cluster.load.outOfOrder} / ${cluster.load.wrongSize}`, `${ceiling.load.outOfOrder} / ${ceiling.load.wrongSize}`, ''],
    ['sockets closed during run', closes(cluster), closes(ceiling), ''],
    ['load generator CPU (% of a core)', fixed(cluster.load.cpuSeconds / cluster.load.wallSeconds * 100, 0),
      fixed(ceiling.load.cpuSeconds / ceiling.load.wallSeconds * 100, 0), ''],
    ['load generator event-loop use', `${fixed(cluster.load.eventLoopUtilization * 100, 0)}%`, `${fixed(ceiling.load.eventLoopUtilization * 100, 0)}%`, ''],
    ['sender timer lag p99 / max (ms)', `${fixed(cluster.load.senderLagMs.p99, 1)} / ${fixed(cluster.load.senderLagMs.max, 1)}`,
      `${fixed(ceiling.load.senderLagMs.p99, 1)} / ${fixed(ceiling.load.senderLagMs.max, 1)}`, ''],
    ['publisher backlog max (KB)', fixed(cluster.load.publisherBacklogBytes / 1024, 0), fixed(ceiling.load.publisherBacklogBytes / 1024, 0), ''],
    ['machine CPU busy (all cores)', `${fixed(cluster.machineBusy * 100, 0)}%`, `${fixed(ceiling.machineBusy * 100, 0)}%`, ''],
    ['  of which other users (CPU-s)', fixed(Math.max(0, cluster.othersCpuSeconds), 1), fixed(Math.max(0, ceiling.othersCpuSeconds), 1), ''],
    ['waiting for a CPU: servers / generator (s)', `${fixed(cluster.runQueueWait.servers)} / ${fixed(cluster.runQueueWait.load)}`,
      `${fixed(ceiling.runQueueWait.servers)} / ${fixed(ceiling.runQueueWait.load)}`, ''],
    ['connect all sockets (ms)', fixed(cluster.load.connectMs, 0), fixed(ceiling.load.connectMs, 0), ''],
  ]
  const samples = Object.entries(cluster.counters ?? {})
  const counters = samples.filter(([name]) => /_total\b/.test(name)).map(([name, value]) => `${name} ${value}`).join(', ')
  const mean = (path: string) => {
    const pick = (suffix: string) => samples.find(([name]) => name.startsWith(`relay_latency_seconds_${suffix}{`) && name.includes(`path="${path}"`))?.[1]
    const sum = pick('sum')
    const count = pick('count')
    return sum === undefined || count === undefined || count === 0 ? 'n/a' : `${fixed(sum / count * 1000, 1)} ms`
  }
  const canary = samples.find(([name]) => name.startsWith('backplane_canary_round_trip_seconds'))?.[1]
  return [
    scenario.title,
    `placement: ${scenario.placement}`,
    table(rows),
    `relay counters (whole run, warm-up included): ${counters === '' ? 'none' : counters}`,
    `relay-side latency, mean over the run (publisher's relay → hand-off to operator sockets): local ${mean('local')}, ` +
      `via Redis ${mean('remote')}; last backplane canary round trip ${canary === undefined ? 'n/a' : `${fixed(canary / RELAYS * 1000, 1)} ms`} (mean of relays)`,
    `cluster warnings logged: ${Object.entries(cluster.warnings).map(([msg, n]) => `${n}× "${msg}"`).join(', ') || 'none'}`,
  ].join('\n')
}

function summary (results: Array<{ scenario: Scenario, cluster: Derived, ceiling: Derived }>): string {
  const rows = [
    ['cluster/ceiling', ...results.map(({ scenario }) => `(${scenario.key})`)],
    ['CPU-s per delivered GB', ...results.map(({ cluster, ceiling }) => ratio(cluster.cpuPerGB, ceiling.cpuPerGB))],
    ['  incl. Redis', ...results.map(({ cluster, ceiling }) => ratio(cluster.cpuPerGBWithRedis, ceiling.cpuPerGB))],
    ['latency p50', ...results.map(({ cluster, ceiling }) => ratio(cluster.p50, ceiling.p50))],
    ['latency p99', ...results.map(({ cluster, ceiling }) => ratio(cluster.p99, ceiling.p99))],
    ['peak RSS', ...results.map(({ cluster, ceiling }) => ratio(cluster.rssMB, ceiling.rssMB))],
    ['delivered fraction', ...results.map(({ cluster, ceiling }) => ratio(cluster.deliveredFraction, ceiling.deliveredFraction))],
  ]
  return table(rows)
}

// ---- Main -----------------------------------------------------------------

async function preflight (): Promise<void> {
  if (!existsSync(CLI)) throw new BenchDependencyError(`${CLI} is missing: run "pnpm build" first (pnpm bench does)`)
  await checkRedis(TEST_REDIS_URL)
}

async function main (): Promise<void> {
  await preflight()
  const dbScope = new Teardowns()
  active.add(dbScope)
  const dbEnv = await prepareDatabase(dbScope)
  console.log(`pnpm bench: ${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), node ${process.version}; ` +
    `each run: connect, ${WARMUP_MS / 1000} s warm-up (not counted), ${DURATION_MS / 1000} s measured` +
    `${DURATION_MS === SPEC_DURATION_MS ? '' : ` (set by BENCH_DURATION; the issue's runs are ${SPEC_DURATION_MS / 1000} s)`}, ≤ ${DRAIN_MS / 1000} s drain.`)
  console.log('Ratios are the result; absolute numbers vary with whatever else runs on this shared machine.\n')
  const results: Array<{ scenario: Scenario, cluster: Derived, ceiling: Derived }> = []
  for (const scenario of scenarios) {
    const cluster = await measure('cluster', scenario, dbEnv)
    const ceiling = await measure('ceiling', scenario, dbEnv)
    console.log(`${report(scenario, cluster, ceiling)}\n`)
    results.push({ scenario, cluster: derive(cluster), ceiling: derive(ceiling) })
  }
  await dbScope.run()
  active.delete(dbScope)
  console.log(summary(results))
  console.log(`
Server CPU = utime+stime from /proc/<pid>/stat over the measured window (cluster: control plane + relays; Redis
shown separately from INFO cpu, shared with anything else using it). GB = 10^9 delivered payload bytes. RSS = peak of
the summed VmRSS sampled every 250 ms from connect to end. Latency = generator send → operator receipt, same clock.
A load generator near 100% of a core or with a large timer lag means the generator, not the server, limited the run.`)
  console.log(`\nbench wall time: ${((performance.now() - runStarted) / 1000).toFixed(1)} s (plus the build)`)
}

const cleanUp = async () => { await Promise.all([...active].map(async (scope) => await scope.run())) }
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true
    process.stderr.write(`bench: ${signal}: stopping the servers and dropping the database\n`)
    void cleanUp().finally(() => process.exit(130))
  })
}

try {
  await main()
} catch (err) {
  await cleanUp()
  // The cleanup above ended the run: the signal handler exits.
  if (interrupted) await new Promise(() => {})
  if (err instanceof BenchDependencyError) {
    process.stderr.write(`bench: missing dependency: ${err.message}\n`)
    process.exit(3)
  }
  process.stderr.write(`bench: failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
}
