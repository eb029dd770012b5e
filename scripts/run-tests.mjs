#!/usr/bin/env node
// Runs the whole test suite and prints the closing line CI reads:
//   tests: N passed, N failed
// A "test" is a top-level t.test() of a test file (tap's per-file results
// in .tap/test-results), or one pytest test of the Python client
// (clients/python/tests, run by Debian's /usr/bin/python3 with python3-pytest and python3-jwt;
// its junit XML is parsed). A file that crashes before reporting, or a pytest
// that cannot start, counts as one failure; skipped tests count as failures.
// Arguments narrow the run: test files (.test.ts for tap; paths under
// clients/python for pytest), or --python-only / --tap-only.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const resultsDir = join(root, '.tap/test-results')

function walk (dir, match) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? (name === 'node_modules' ? [] : walk(path, match)) : (match(name) ? [path] : [])
  })
}

const pythonDir = join(root, 'clients/python')
const args = process.argv.slice(2)
const pythonOnly = args.includes('--python-only')
const tapOnly = args.includes('--tap-only')
const requested = args.filter((arg) => !arg.startsWith('--'))
const isPython = (arg) => !relative(pythonDir, resolve(arg)).startsWith('..')
const pythonRequested = requested.filter(isPython)
const tapRequested = requested.filter((arg) => !isPython(arg))
const runPython = !tapOnly && (pythonOnly || requested.length === 0 || pythonRequested.length > 0)
const files = pythonOnly || (requested.length > 0 && tapRequested.length === 0)
  ? []
  : tapRequested.length > 0
    ? tapRequested
    : ['packages', 'bench'].flatMap((dir) => walk(join(root, dir), (name) => name.endsWith('.test.ts'))).map((path) => relative(root, path)).sort()
if (files.length === 0 && !runPython) {
  console.error('no test files found')
  process.exit(1)
}

let passed = 0
let failed = 0
const failures = []

// Results older than this run are stale (not removed: another run may be using them).
const startedAt = Date.now() - 1000
// A file whose first lines say `// tap: run alone` asserts latency bounds of the
// acceptance criteria (a p99 under load it causes itself): it runs after the
// others, one file at a time, so the suite's own parallelism is not its noise.
const alone = (file) => readFileSync(join(root, file), 'utf8').split('\n', 5).some((line) => line.trim() === '// tap: run alone')
const together = files.filter((file) => !alone(file))
const afterwards = files.filter(alone)
const runTap = (batch, args = []) => batch.length === 0 ? { status: 0 } : spawnSync(join(root, 'node_modules/.bin/tap'), [...args, ...batch], { cwd: root, stdio: 'inherit' })
const tapStatuses = [runTap(together), runTap(afterwards, ['--jobs=1'])]
const tap = tapStatuses.find((status) => status.status !== 0) ?? tapStatuses[0]

for (const file of files) {
  const results = join(resultsDir, `${file}.tap`)
  if (!existsSync(results) || statSync(results).mtimeMs < startedAt) {
    failed++
    failures.push(`${file}: no results (crashed before reporting?)`)
    continue
  }
  let points = 0
  for (const line of readFileSync(results, 'utf8').split('\n')) {
    const point = /^(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?(?: # time=.*)?$/.exec(line)
    if (point === null) continue
    points++
    if (point[1] === undefined && point[3] === undefined) passed++
    else {
      failed++
      failures.push(`${file}: ${point[2]}${point[3] === undefined ? '' : ` (${point[3]})`}`)
    }
  }
  if (points === 0) {
    failed++
    failures.push(`${file}: reported no test`)
  }
}
if (tap.status !== 0 && failed === 0) {
  failed++
  failures.push(`tap exited with ${tap.status ?? tap.signal}`)
}

if (runPython) runPytest(pythonRequested.map((arg) => relative(pythonDir, resolve(arg))))

/**
 * pytest on the Python client with Debian's interpreter (python3-pytest,
 * python3-websockets and python3-jwt are Debian packages; PYTHON overrides the interpreter).
 * Counts come from its junit XML: a testcase with <failure>, <error> or
 * <skipped> is a failure.
 */
function runPytest (paths) {
  const python = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3')
  const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }
  const probe = spawnSync(python, ['-c', 'import pytest, websockets, jwt'], { cwd: pythonDir, env, encoding: 'utf8' })
  if (probe.status !== 0) {
    failed++
    const why = probe.error?.message ?? probe.stderr.trim().split('\n').at(-1)
    failures.push(`clients/python: pytest cannot start with ${python} (${why}); install Debian's packages: apt-get install python3-pytest python3-websockets python3-jwt (npm test does, as root)`)
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'ss-pytest-'))
  const report = join(dir, 'junit.xml')
  try {
    console.log(`\n# pytest: clients/python with ${python}`)
    const run = spawnSync(python, ['-m', 'pytest', '-p', 'no:cacheprovider', '-rfEs', `--junitxml=${report}`, ...(paths.length > 0 ? paths : ['tests'])], { cwd: pythonDir, env, stdio: 'inherit', timeout: 20 * 60_000 })
    const before = passed + failed
    if (existsSync(report)) {
      const xml = readFileSync(report, 'utf8')
      for (const [, attributes, body = ''] of xml.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
        const attribute = (name) => new RegExp(`\\b${name}="([^"]*)"`).exec(attributes)?.[1] ?? ''
        const outcome = /<(failure|error|skipped)\b/.exec(body)?.[1]
        if (outcome === undefined) {
          passed++
        } else {
          failed++
          failures.push(`clients/python: ${attribute('classname')}::${attribute('name')}${outcome === 'failure' ? '' : ` (${outcome})`}`)
        }
      }
    }
    if (passed + failed === before) {
      failed++
      failures.push(`clients/python: pytest reported no test (exit ${run.status ?? run.signal})`)
    } else if (run.status !== 0 && failures.every((f) => !f.startsWith('clients/python'))) {
      failed++
      failures.push(`clients/python: pytest exited with ${run.status ?? run.signal}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (failures.length > 0) console.log(`\nfailed:\n  ${failures.join('\n  ')}`)
console.log(`\ntests: ${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
