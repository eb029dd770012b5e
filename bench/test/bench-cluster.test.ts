// tap: run alone
import { spawn } from 'node:child_process'
import t from 'tap'
import { REPO_ROOT } from '@streaming-service/testing'

// `pnpm bench` with BENCH_ONLY=cluster: scenario (b) on one Redis and on a
// 3-master Redis Cluster, each Redis process's CPU printed, with one 2-second run.
t.test('the benchmark compares one Redis with a 3-master cluster and prints Redis CPU per shard and the ratio', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, BENCH_ONLY: 'cluster', BENCH_DURATION: '2' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  t.equal(code, 0, `exit 0 (stderr: ${stderr.slice(-2000)})`)
  t.match(stdout, /delivered fraction\s+[\d.]+\s+[\d.]+/, 'delivery on both backends')
  t.match(stdout, /one Redis\s+redis :\d+\s+[\d.]+ s \(\d+% of a core\)/, 'the single Redis\'s CPU')
  const masters = stdout.match(/cluster\s+master :\d+\s+[\d.]+ s/g) ?? []
  t.equal(masters.length, 3, 'the CPU of each of the 3 masters')
  t.equal((stdout.match(/cluster\s+replica :\d+\s+[\d.]+ s/g) ?? []).length, 3, 'and of each replica')
  t.match(stdout, /busiest master \/ one Redis: [\d.]+/, 'and the ratio')
  t.comment(stdout)
})
