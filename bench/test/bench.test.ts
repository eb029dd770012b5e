import { spawn } from 'node:child_process'
import t from 'tap'
import { REPO_ROOT } from '@streaming-service/testing'

// The full `pnpm bench` (15 s per scenario, ~2 min) is run by hand; this proves
// the harness works end to end — both scenarios, cluster and ceiling, table
// printed — with 2-second runs.
t.test('the benchmark runs both scenarios against the cluster and the ceiling and prints the ratio table', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, BENCH_DURATION: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, `exit 0 (stderr: ${stderr.slice(-2000)})`)
  for (const row of ['delivered / expected', 'latency p50 (ms)', 'latency p99 (ms)', 'server CPU-s per delivered GB', 'peak RSS, sum (MB)']) {
    t.match(stdout, row, `reports ${row}`)
  }
  t.match(stdout, /cluster\/ceiling\s+\(a\)\s+\(b\)/, 'the closing ratio table covers both scenarios')
  t.match(stdout, /delivered fraction\s+[\d.]+×\s+[\d.]+×/)
})
