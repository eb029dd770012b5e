/**
 * Where the servers' CPU went, from the V8 CPU profiles `pnpm bench` writes
 * when BENCH_PROFILE=<dir> is set (relays run with --cpu-prof; open the
 * .cpuprofile files in Chrome DevTools for flame charts):
 *
 *   node --import tsx bench/profile-summary.ts <dir> [--top 30] [--window <from>,<to>]
 *
 * --window 13,3: only the samples from 13 s to 3 s before each profile's end
 * (the measured window of a BENCH_DURATION=10 run, before drain and stop).
 *
 * Prints self time as a share of busy time (idle excluded), by area
 * (syscalls, GC, ws, ioredis, prom-client, our packages…) and by function.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { basename, join } from 'node:path'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

/** The area a function's self time counts against. */
export function areaOf (functionName: string, url: string): string {
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(garbage collector)') return 'garbage collection'
  if (functionName === '(program)') return 'V8/native (program)'
  if (/^(writev|writeBuffer|writeUtf8String|writeLatin1String)$/.test(functionName)) return `syscall ${functionName}`
  if (url.includes('/node_modules/.pnpm/ws@') || url.includes('/node_modules/ws/')) return 'ws'
  if (url.includes('ioredis') || url.includes('redis-parser') || url.includes('denque')) return 'ioredis'
  if (url.includes('prom-client')) return 'prom-client'
  if (url.includes('fastify') || url.includes('find-my-way') || url.includes('avvio')) return 'fastify'
  if (url.includes('pino')) return 'pino'
  if (url.includes('postgres')) return 'postgres.js'
  if (url.includes('/packages/relay/')) return 'relay (ours)'
  if (url.includes('/packages/core/')) return 'core (ours)'
  if (url.startsWith('node:')) return 'node internals'
  if (url === '') return 'native/builtin'
  return 'other'
}

export interface Summary {
  busyMs: number
  byArea: Array<[string, number]>
  byFunction: Array<[string, number]>
}

/**
 * `window`: only the samples between `from` and `to` seconds before the
 * profile's end (a relay's profile spans its whole life, start-up and
 * module loading included; the bench's measured window is near its end).
 */
export function summarize (profiles: Profile[], window?: { from: number, to: number }): Summary {
  const byArea = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let busy = 0
  for (const profile of profiles) {
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
    let at = profile.startTime
    profile.samples.forEach((id, i) => {
      at += profile.timeDeltas[i] ?? 0
      const beforeEnd = (profile.endTime - at) / 1e6
      if (window !== undefined && (beforeEnd > window.from || beforeEnd < window.to)) return
      const node = nodes.get(id)
      if (node === undefined) return
      const ms = (profile.timeDeltas[i] ?? 0) / 1000
      const { functionName, url, lineNumber } = node.callFrame
      const area = areaOf(functionName, url)
      if (area === 'idle') return
      busy += ms
      byArea.set(area, (byArea.get(area) ?? 0) + ms)
      const name = `${functionName || '(anonymous)'} ${url === '' ? '' : `${basename(url)}:${lineNumber + 1}`}`.trim()
      byFunction.set(name, (byFunction.get(name) ?? 0) + ms)
    })
  }
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1])
  return { busyMs: busy, byArea: sorted(byArea), byFunction: sorted(byFunction) }
}

function print (summary: Summary, top: number): void {
  const share = (ms: number) => `${(ms / summary.busyMs * 100).toFixed(1).padStart(5)} %`
  console.log(`busy ${(summary.busyMs / 1000).toFixed(2)} s (idle excluded)\n\nby area`)
  for (const [area, ms] of summary.byArea) console.log(`  ${share(ms)}  ${area}`)
  console.log(`\ntop ${top} functions by self time`)
  for (const [name, ms] of summary.byFunction.slice(0, top)) console.log(`  ${share(ms)}  ${name}`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2]
  if (dir === undefined) {
    process.stderr.write('usage: node --import tsx bench/profile-summary.ts <dir of .cpuprofile files> [--top N]\n')
    process.exit(2)
  }
  const topIndex = process.argv.indexOf('--top')
  const top = topIndex === -1 ? 30 : Number(process.argv[topIndex + 1])
  const windowIndex = process.argv.indexOf('--window')
  const [from, to] = windowIndex === -1 ? [] : process.argv[windowIndex + 1]!.split(',').map(Number)
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'))
  if (files.length === 0) {
    process.stderr.write(`no .cpuprofile in ${dir}\n`)
    process.exit(1)
  }
  const window = from === undefined || to === undefined ? undefined : { from, to }
  print(summarize(files.map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Profile), window), top)
}
