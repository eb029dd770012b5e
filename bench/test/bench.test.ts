import { spawn } from 'node:child_process'
import t from 'tap'
import { REPO_ROOT } from '@streaming-service/testing'

// The full `pnpm bench` (3 scenarios × 3 systems × 3 runs of 15 s) is run by
// hand; this proves the harness works end to end — every scenario against the
// cluster and both baselines, the memory probe, the tables — with one 2-second
// run each.
t.test('the benchmark runs every scenario against the cluster, the naive cluster and the ceiling, and prints the ratio tables', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
    cwd: REPO_ROOT,
    // The Redis Cluster comparison has a test of its own (bench-cluster.test.ts).
    env: { ...process.env, BENCH_DURATION: '2', BENCH_REPEAT: '1', BENCH_IDLE_CONNECTIONS: '50', BENCH_CLUSTER: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, `exit 0 (stderr: ${stderr.slice(-2000)})`)
  for (const row of ['delivered fraction', 'server CPU-s per delivered GB', 'latency p99 (ms)', 'peak RSS, sum of processes (MB)', 'cluster drops and faults']) {
    t.match(stdout, row, `reports ${row}`)
  }
  t.match(stdout, /medians\s+\(a\)\s+\(b\)\s+\(c\)/, 'the closing table covers every scenario')
  t.match(stdout, /CPU-s\/GB cluster\/naive\s+[\d.]+×\s+[\d.]+×\s+[\d.]+×/, 'with ratios against the naive cluster')
  t.match(stdout, /RSS per idle operator connection \(KB\)\s+-?[\d.]+\s+-?[\d.]+/, 'and the memory probe')
  t.match(stdout, /spawn to \/ready: [\d.]+ s/, 'and the first start')
})
