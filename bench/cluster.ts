/**
 * `pnpm bench` (alone: BENCH_ONLY=cluster): the 100-session scenario (b) with
 * the backplane on one Redis and on a Redis Cluster of 3 masters (+ 3
 * replicas), both throwaway redis-servers of this run on spare ports, so each
 * Redis process's CPU (utime+stime from /proc/<pid>/stat) is its own. Prints
 * the CPU of every Redis process and the ratio of the busiest master to the
 * single Redis: the share of the bottleneck one core that is left.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { startRedisCluster, startRedisServer } from '@streaming-service/testing'
import { cpuSeconds, startBenchCluster, Teardowns } from './harness.js'
import { active, progress } from './measure.js'
import type { FromLoad, LoadResult, PlannedSession, ToLoad } from './protocol.js'
import { fixed, table } from './report.js'
import { RELAYS, type Scenario } from './scenarios.js'

export interface ClusterComparisonOptions {
  dbEnv: Record<string, string>
  scenario: Scenario
  warmupMs: number
  durationMs: number
  drainMs: number
}

interface RedisProcess { name: string, pid: number }
interface Run { load: LoadResult, redis: Array<{ name: string, cpu: number }>, serverCpu: number }

type Backend = 'one Redis' | 'Redis Cluster'

async function startBackend (backend: Backend, scope: Teardowns): Promise<{ env: Record<string, string>, processes: () => Promise<RedisProcess[]> }> {
  if (backend === 'one Redis') {
    const server = await startRedisServer(scope)
    return { env: { REDIS_URL: server.url }, processes: async () => [{ name: `redis :${server.port}`, pid: server.pid! }] }
  }
  const cluster = await startRedisCluster(scope, { masters: 3, replicasPerMaster: 1 })
  return {
    env: { REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.seeds },
    processes: async () => (await cluster.nodes())
      .sort((x, y) => (x.role === y.role ? x.port - y.port : x.role === 'master' ? -1 : 1))
      .map((node) => ({ name: `${node.role} :${node.port}`, pid: cluster.server(node.port).pid! })),
  }
}

async function runOnce (backend: Backend, options: ClusterComparisonOptions): Promise<Run> {
  const scope = new Teardowns()
  active.add(scope)
  try {
    const { scenario } = options
    progress(`(cluster) ${backend}: starting`)
    const redis = await startBackend(backend, scope)
    const sut = await startBenchCluster(scope, { dbEnv: options.dbEnv, relays: RELAYS, publisherRelay: scenario.publisherRelay, redisEnv: redis.env, auth: 'open' })
    const sessions: PlannedSession[] = []
    for (let i = 0; i < scenario.sessions; i++) sessions.push(await sut.openSession(i, scenario.operatorRelays(i)))
    const processes = await redis.processes()
    progress(`(cluster) ${backend}: ${sessions.length} sessions ready; streaming`)
    const load = fork(fileURLToPath(new URL('./load.ts', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    scope.teardown(() => { if (load.exitCode === null && load.signalCode === null) load.kill('SIGKILL') })
    const snapshot = (): { redis: number[], servers: number } => ({
      redis: processes.map((p) => cpuSeconds(p.pid)),
      servers: sut.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    })
    let before: ReturnType<typeof snapshot> | undefined
    let after: ReturnType<typeof snapshot> | undefined
    const result = await new Promise<LoadResult>((resolve, reject) => {
      load.on('message', (message: FromLoad) => {
        if (message.type === 'mark') {
          if (message.phase === 'start') before = snapshot()
          else after = snapshot()
          load.send({ type: 'ack' } satisfies ToLoad)
        } else if (message.type === 'result') resolve(message.result)
        else if (message.type === 'error') reject(new Error(`load generator: ${message.message}`))
      })
      load.once('exit', (code, signal) => reject(new Error(`load generator exited (${code ?? signal}) without a result`)))
      load.send({
        type: 'run',
        plan: { sessions, messageSize: scenario.messageSize, fps: scenario.fps, warmupMs: options.warmupMs, durationMs: options.durationMs, drainMs: options.drainMs },
      } satisfies ToLoad)
    })
    return {
      load: result,
      redis: processes.map((p, i) => ({ name: p.name, cpu: after!.redis[i]! - before!.redis[i]! })),
      serverCpu: after!.servers - before!.servers,
    }
  } finally {
    await scope.run()
    active.delete(scope)
  }
}

/** Runs scenario (b) on both backends and returns the report. */
export async function compareRedisCluster (options: ClusterComparisonOptions): Promise<string> {
  const single = await runOnce('one Redis', options)
  const sharded = await runOnce('Redis Cluster', options)
  const seconds = options.durationMs / 1000
  const share = (cpu: number): string => `${fixed(cpu, 2)} s (${fixed((cpu / seconds) * 100, 0)}% of a core)`
  const masters = sharded.redis.filter((r) => r.name.startsWith('master'))
  const busiest = Math.max(...masters.map((r) => r.cpu))
  const singleCpu = single.redis[0]!.cpu
  const delivered = (run: Run): string => fixed(run.load.delivered / run.load.expected, 4)
  const rows = [
    ['', 'one Redis', 'Redis Cluster (3 masters)'],
    ['delivered fraction', delivered(single), delivered(sharded)],
    ['latency p99 (ms)', fixed(single.load.latencyMs.p99, 1), fixed(sharded.load.latencyMs.p99, 1)],
    ['relay + control plane CPU-s', fixed(single.serverCpu, 2), fixed(sharded.serverCpu, 2)],
    ['Redis CPU-s, all processes', fixed(singleCpu, 2), fixed(sharded.redis.reduce((sum, r) => sum + r.cpu, 0), 2)],
  ]
  return [
    `Redis Cluster: ${options.scenario.title}; backplane on one Redis, then on 3 masters + 3 replicas`,
    table(rows),
    '',
    'Redis CPU per process over the measured window:',
    ...single.redis.map((r) => `  one Redis  ${r.name.padEnd(18)} ${share(r.cpu)}`),
    ...sharded.redis.map((r) => `  cluster    ${r.name.padEnd(18)} ${share(r.cpu)}`),
    `busiest master / one Redis: ${fixed(busiest / singleCpu, 2)} (the bottleneck core carries that share of the load); ` +
      `sum of masters / one Redis: ${fixed(masters.reduce((sum, r) => sum + r.cpu, 0) / singleCpu, 2)}`,
  ].join('\n')
}
