/**
 * `pnpm bench`: the relay cluster (control plane + 3 relays, real Redis)
 * against two baselines measured in the same run with the same load
 * generator: the naive ws + ioredis cluster (naive-relay.ts, 3 nodes) and the
 * single-process ws broadcast (ceiling-server.ts). Each scenario runs every
 * system BENCH_REPEAT times (default 3), interleaved, and the tables show
 * medians: this machine is shared and noisy, compare ratios, not absolutes.
 *
 * BENCH_AUTH=open|token the cluster's AUTH_MODE (default open; in token mode
 * every operator presents a token minted by the control plane).
 * BENCH_DURATION=<s> measured seconds per run (default 15); BENCH_ONLY=a|b|c
 * one scenario; BENCH_REPEAT=<n>; BENCH_IDLE_CONNECTIONS=<n> for the memory
 * probe (default 1000); BENCH_PROFILE=<dir> CPU profiles of the cluster's
 * relays (bench/profile-summary.ts reads them). Then scenario (b) on one Redis
 * and on a 3-master Redis Cluster, Redis CPU per shard (bench/cluster.ts):
 * BENCH_ONLY=cluster runs only that, BENCH_CLUSTER=off leaves it out.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { CLI, TEST_REDIS_URL } from '@streaming-service/testing'
import { compareRedisCluster } from './cluster.js'
import { BenchDependencyError, checkRedis, prepareDatabase, Teardowns } from './harness.js'
import { active, measure, progress, type Measurement, type SystemName } from './measure.js'
import { measureMemory } from './memory.js'
import { fixed, report, summary, table, type Runs } from './report.js'
import { allScenarios, type Scenario } from './scenarios.js'

const SPEC_DURATION_MS = 15_000
const DURATION_MS = Number(process.env.BENCH_DURATION ?? SPEC_DURATION_MS / 1000) * 1000
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3)
const IDLE_CONNECTIONS = Number(process.env.BENCH_IDLE_CONNECTIONS ?? 1000)
for (const [name, value, min] of [['BENCH_DURATION', DURATION_MS / 1000, 1], ['BENCH_REPEAT', REPEAT, 1], ['BENCH_IDLE_CONNECTIONS', IDLE_CONNECTIONS, 1]] as const) {
  if (!(Number.isInteger(value) && value >= min)) {
    process.stderr.write(`bench: ${name}=${JSON.stringify(process.env[name])}: a whole number, at least ${min}\n`)
    process.exit(2)
  }
}
const AUTH = (process.env.BENCH_AUTH ?? 'open') as 'open' | 'token'
if (!['open', 'token'].includes(AUTH)) {
  process.stderr.write(`bench: BENCH_AUTH=${JSON.stringify(AUTH)}: open or token\n`)
  process.exit(2)
}
const WARMUP_MS = 2000
const DRAIN_MS = 2000
const SYSTEMS: SystemName[] = ['cluster', 'naive', 'ceiling']

const scenarios = allScenarios(DURATION_MS / 1000).filter((scenario) => process.env.BENCH_ONLY === undefined || process.env.BENCH_ONLY === scenario.key)

function profileDir (scenario: Scenario, run: number): { profileDir?: string } {
  const root = process.env.BENCH_PROFILE
  if (root === undefined || root === '' || run > 0) return {}
  const dir = join(root, scenario.key)
  mkdirSync(dir, { recursive: true })
  return { profileDir: dir }
}

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
    `${DURATION_MS === SPEC_DURATION_MS ? '' : ` (set by BENCH_DURATION; the issue's runs are ${SPEC_DURATION_MS / 1000} s)`}, ≤ ${DRAIN_MS / 1000} s drain; ` +
    `${REPEAT} run(s) of each system per scenario, interleaved; the cluster in AUTH_MODE=${AUTH} (BENCH_AUTH).`)
  console.log('Ratios are the result; absolute numbers vary with whatever else runs on this shared machine.\n')
  const redisCluster = async (): Promise<void> => {
    const scenario = allScenarios(DURATION_MS / 1000).find((s) => s.key === 'b')!
    console.log(`${await compareRedisCluster({ dbEnv, scenario, warmupMs: WARMUP_MS, durationMs: DURATION_MS, drainMs: DRAIN_MS })}\n`)
  }
  if (process.env.BENCH_ONLY === 'cluster') {
    await redisCluster()
    await dbScope.run()
    active.delete(dbScope)
    return
  }
  const results: Array<{ scenario: Scenario, runs: Runs }> = []
  for (const scenario of scenarios) {
    const runs: Runs = { cluster: [], naive: [], ceiling: [] }
    for (let run = 0; run < REPEAT; run++) {
      // A different system first each time: the box's drift is spread over all three.
      for (let i = 0; i < SYSTEMS.length; i++) {
        const system = SYSTEMS[(i + run) % SYSTEMS.length]!
        const measured: Measurement = await measure(system, scenario, {
          dbEnv, warmupMs: WARMUP_MS, durationMs: DURATION_MS, drainMs: DRAIN_MS, auth: AUTH, ...(system === 'cluster' ? profileDir(scenario, run) : {}),
        })
        runs[system].push(measured)
      }
    }
    console.log(`${report(scenario, runs)}\n`)
    results.push({ scenario, runs })
  }
  if (process.env.BENCH_ONLY === undefined && process.env.BENCH_CLUSTER !== 'off') await redisCluster()
  progress(`memory: idle relay, ${IDLE_CONNECTIONS} idle operator connections, first start`)
  const memory = await measureMemory({ dbEnv, connections: IDLE_CONNECTIONS })
  await dbScope.run()
  active.delete(dbScope)
  console.log(summary(results))
  console.log(`\nmemory and start-up (${memory.connections} idle operators on one relay; the same number of clients on the ceiling)`)
  console.log(table([
    ['', 'relay', 'ceiling'],
    ['idle RSS (MB)', fixed(memory.relayIdleMB, 1), fixed(memory.ceilingIdleMB, 1)],
    ['RSS per idle operator connection (KB)', fixed(memory.relayPerConnectionKB, 1), fixed(memory.ceilingPerConnectionKB, 1)],
  ]))
  console.log(`api on a fresh embedded database, spawn to /ready: ${fixed(memory.apiFirstStartMs / 1000, 1)} s`)
  console.log(`
Server CPU = utime+stime from /proc/<pid>/stat over the measured window (cluster: control plane + relays; Redis
shown separately from INFO cpu, shared with anything else using it). GB = 10^9 delivered payload bytes. RSS = peak of
the summed VmRSS sampled every 250 ms from connect to end. Latency = generator send → operator receipt, same clock.
A load generator near 100% of a core or with a large timer lag means the generator, not the server, limited the run.`)
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
