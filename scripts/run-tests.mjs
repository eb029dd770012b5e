#!/usr/bin/env node
// Runs the whole test suite and prints the closing line CI reads:
//   tests: N passed, N failed
// A "test" is a top-level t.test() of a test file (tap's per-file results
// in .tap/test-results). A file that crashes before reporting counts as one
// failure. Arguments (test files) narrow the run.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const resultsDir = join(root, '.tap/test-results')

function walk (dir, match) {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? (name === 'node_modules' ? [] : walk(path, match)) : (match(name) ? [path] : [])
  })
}

const requested = process.argv.slice(2)
const files = requested.length > 0
  ? requested
  : ['packages', 'bench'].flatMap((dir) => walk(join(root, dir), (name) => name.endsWith('.test.ts'))).map((path) => relative(root, path)).sort()
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}

// Results older than this run are stale (not removed: another run may be using them).
const startedAt = Date.now() - 1000
const tap = spawnSync(join(root, 'node_modules/.bin/tap'), files, { cwd: root, stdio: 'inherit' })

let passed = 0
let failed = 0
const failures = []
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

if (failures.length > 0) console.log(`\nfailed:\n  ${failures.join('\n  ')}`)
console.log(`\ntests: ${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
