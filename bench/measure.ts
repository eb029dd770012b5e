/**
 * One measured run of a scenario against a system under test: the load
 * generator (load.ts) in its own process, CPU and memory of the servers from
 * /proc, Redis CPU from INFO, the cluster's counters from /metrics.
 */
import { fork } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { TEST_REDIS_URL } from '@streaming-service/testing'
import {
  cpuSeconds, machineCpu, redisCpuSeconds, RssSampler, runQueueSeconds, startBenchCluster, startCeiling, startNaive, Teardowns,
  type SystemUnderTest,
} from './harness.js'
import type { FromLoad, LoadResult, PlannedSession, ToLoad } from './protocol.js'
import { RELAYS, type Scenario } from './scenarios.js'

/** The project's cluster, the naive ws + ioredis cluster, the single-process broadcast. */
export type SystemName = 'cluster' | 'naive' | 'ceiling'

export interface Measurement {
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

/** Scopes with running processes, for a signal to stop them all. */
export const active = new Set<Teardowns>()

export interface MeasureOptions {
  dbEnv: Record<string, string>
  warmupMs: number
  durationMs: number
  drainMs: number
  /** The cluster's AUTH_MODE (BENCH_AUTH). */
  auth: 'open' | 'token'
  /** The cluster's relays write CPU profiles here (see profile-summary.ts). */
  profileDir?: string
}

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
export function progress (text: string): void {
  process.stderr.write(`[${((performance.now() - runStarted) / 1000).toFixed(1).padStart(5)} s] ${text}\n`)
}

async function start (system: SystemName, scenario: Scenario, scope: Teardowns, options: MeasureOptions): Promise<SystemUnderTest> {
  switch (system) {
    case 'cluster': return await startBenchCluster(scope, {
      dbEnv: options.dbEnv, relays: RELAYS, publisherRelay: scenario.publisherRelay, auth: options.auth, ...(options.profileDir === undefined ? {} : { profileDir: options.profileDir }),
    })
    case 'naive': return await startNaive(scope, { relays: RELAYS, publisherRelay: scenario.publisherRelay })
    case 'ceiling': return await startCeiling(scope)
  }
}

/** One run of `scenario` against `system`: start it, connect, warm up, measure, drain, stop. */
export async function measure (system: SystemName, scenario: Scenario, options: MeasureOptions): Promise<Measurement> {
  const scope = new Teardowns()
  active.add(scope)
  try {
    progress(`(${scenario.key}) ${system}: starting`)
    const sut = await start(system, scenario, scope, options)
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
      const limitMs = options.warmupMs + options.durationMs + options.drainMs + 60_000
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
        plan: { sessions, messageSize: scenario.messageSize, fps: scenario.fps, warmupMs: options.warmupMs, durationMs: options.durationMs, drainMs: options.drainMs },
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
