/**
 * `pnpm bench:media` (run with --expose-gc): what the relay's media scanners
 * and late-join cache cost on hostile input (SPEC §10) next to real ffmpeg
 * streams, in this process, without sockets. Prints:
 *
 * - scan time and throughput (MB/s), events and transient heap for one 8 MB
 *   message of each crafted input (with the scanners' limits and without),
 *   and for real WebM / fMP4 streams in 64 KB messages;
 * - heap held by a GopCache after a keyframe block arrives as many one-byte
 *   messages;
 * - how many elements/boxes and segments real streams have per message and
 *   per second (what the scanners' caps must leave room for).
 *
 * Times are the main thread's CPU time, so a busy shared box skews them less.
 * No targets: compare the crafted rows with the real-stream rows of the same run.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  mp4FreeFlood, mp4Init, mp4KeyFragment, mp4TinyFragments, webmBlockHeader, webmInit, webmKeyClusterStart, webmTinyClusters, webmVoidFlood,
} from '@streaming-service/testing'
import { createScanner, GopCache, type ContainerFormat, type ScannerOptions } from '../packages/relay/src/media/index.js'
import { structure, type Structure } from './media-structure.js'

const MB = 1024 * 1024
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  process.stderr.write('bench:media needs --expose-gc (pnpm bench:media passes it)\n')
  process.exit(2)
}

function heapBytes (): number {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

interface ScanRow { input: string, mb: number, ms: number, events: number, segments: number, state: string, heapMb: number }

/** CPU ms of one scan of `messages` by a fresh scanner. */
function timeScan (format: ContainerFormat, messages: Buffer[], options?: ScannerOptions): number {
  const scanner = createScanner(format, options)
  const started = process.cpuUsage()
  for (const message of messages) scanner.push(message)
  const used = process.cpuUsage(started)
  return (used.user + used.system) / 1000
}

/**
 * A scan row: one run not counted (V8 optimizes the walkers, as on a relay
 * that has been up a while), the median CPU time of `times` runs, then one
 * run that counts events and the heap growth at its peak, with the events
 * still referenced.
 */
function scanRow (input: string, format: ContainerFormat, messages: Buffer[], times: number, options?: ScannerOptions): ScanRow {
  timeScan(format, messages, options)
  const runs = Array.from({ length: times }, () => timeScan(format, messages, options)).sort((a, b) => a - b)
  gc!()
  const before = heapBytes()
  const scanner = createScanner(format, options)
  let events = 0
  let segments = 0
  let peak = 0
  for (const message of messages) {
    const found = scanner.push(message)
    events += found.length
    for (const event of found) if (event.type === 'segment') segments++
    peak = Math.max(peak, heapBytes() - before)
  }
  const bytes = messages.reduce((sum, message) => sum + message.length, 0)
  return { input, mb: bytes / MB, ms: runs[Math.floor(times / 2)]!, events, segments, state: scanner.state, heapMb: peak / MB }
}

function chunks (bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = []
  for (let offset = 0; offset < bytes.length; offset += size) out.push(bytes.subarray(offset, offset + size))
  return out
}

interface CacheRow { messages: number, ms: number, retained: number, heapMb: number, snapshotParts: number }

/** A keyframe segment starts, then the payload of a large element in it arrives as `count` one-byte messages. */
function tinyMessages (format: ContainerFormat, count: number): CacheRow {
  const start = format === 'webm'
    ? Buffer.concat([webmInit(), webmKeyClusterStart(), webmBlockHeader(2 ** 28)])
    : Buffer.concat([mp4Init(), mp4KeyFragment(), Buffer.from('7fffffff6d646174', 'hex')])
  gc!()
  const before = heapBytes()
  const cache = new GopCache()
  const started = process.cpuUsage()
  cache.push(start, true)
  for (let i = 0; i < count; i++) cache.push(Buffer.from([i & 0xff]), true)
  const used = process.cpuUsage(started)
  const ms = (used.user + used.system) / 1000
  gc!()
  const heapMb = (heapBytes() - before) / MB
  return { messages: count, ms, retained: cache.retainedBytes, heapMb, snapshotParts: cache.snapshot()?.length ?? 0 }
}

const SECONDS = 10
const av = (rate: number): string[] => ['-f', 'lavfi', '-i', `testsrc=size=640x480:rate=${rate}`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', String(SECONDS)]
/** Real streams: name, file, ffmpeg arguments. */
const REAL: Array<[string, string, string[]]> = [
  ['webm live (VP8 2M + Opus, 25 fps)', 'a.webm', [...av(25), '-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '2M', '-g', '25', '-c:a', 'libopus', '-f', 'webm', '-live', '1']],
  ['webm live (VP8 500k + Opus, 60 fps, keyframe each 10)', 'b.webm', [...av(60), '-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '500k', '-g', '10', '-c:a', 'libopus', '-f', 'webm', '-live', '1']],
  ['webm audio only (Opus 6k)', 'c.webm', ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', String(SECONDS), '-c:a', 'libopus', '-b:a', '6k', '-f', 'webm', '-live', '1']],
  ['fmp4 (H.264 2M + AAC, frag_keyframe)', 'd.mp4', [...av(25), '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-b:v', '2M', '-g', '25', '-c:a', 'aac', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof']],
  ['fmp4 (H.264 500k + AAC, 60 fps, a fragment per frame)', 'e.mp4', [...av(60), '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-b:v', '500k', '-g', '60', '-c:a', 'aac', '-f', 'mp4', '-movflags', 'frag_every_frame+empty_moov+default_base_moof']],
]

const CRAFTED: Array<[string, ContainerFormat, () => Buffer]> = [
  ['webm: 2-byte Void elements', 'webm', () => webmVoidFlood(8 * MB)],
  ['webm: 11-byte keyframe Clusters', 'webm', () => webmTinyClusters(8 * MB)],
  ['fmp4: 8-byte free boxes', 'mp4', () => mp4FreeFlood(8 * MB)],
  ['fmp4: 52-byte keyframe fragments', 'mp4', () => mp4TinyFragments(8 * MB)],
]
// Lifted, not Infinity: a limit that is not a small integer makes V8 deoptimize the walkers.
const MOST = 2 ** 30 - 1
const LIFTED: ScannerOptions = { limits: { readsPerMessage: MOST, readsPerSecond: MOST, segmentsPerMessage: MOST, segmentsPerSecond: MOST } }
/** The scan rows: each crafted input with the limits and without, then two real streams in 64 KB messages. */
const SCAN_ROWS = 2 * CRAFTED.length + 2

function runScanRow (row: number, dir: string): ScanRow {
  if (row < 2 * CRAFTED.length) {
    const [input, format, make] = CRAFTED[row >> 1]!
    return row % 2 === 0 ? scanRow(`${input}: one 8 MB message`, format, [make()], 5) : scanRow(`${input}: one 8 MB message, limits lifted`, format, [make()], 5, LIFTED)
  }
  const [name, file] = REAL[row === 2 * CRAFTED.length ? 0 : 3]!
  return scanRow(`${name}, 64 KB messages`, file.endsWith('.webm') ? 'webm' : 'mp4', chunks(readFileSync(join(dir, file)), 64 * 1024), 15)
}

if (process.argv[2] === '--row') {
  process.stdout.write(JSON.stringify(runScanRow(Number(process.argv[3]), process.argv[4]!)))
  process.exit(0)
}

const dir = mkdtempSync(join(tmpdir(), 'bench-media-'))
try {
  const real = REAL.map(([name, file, args]) => {
    execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args, join(dir, file)])
    return [name, readFileSync(join(dir, file))] as const
  })

  const rows: ScanRow[] = []
  for (let row = 0; row < SCAN_ROWS; row++) {
    // A process of its own per row: what V8 learnt from one input does not slow (or speed) another.
    const output = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--row', String(row), dir], { encoding: 'utf8' })
    rows.push(JSON.parse(output) as ScanRow)
  }

  console.log('\n## Scanning one stream (fresh scanner, one push per message; CPU time, median of 5–15 warm runs, a process per row)\n')
  console.log('| input | MB | CPU ms | MB/s | events | segments | end state | heap growth at peak (MB) |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |')
  for (const row of rows) {
    console.log(`| ${row.input} | ${row.mb.toFixed(1)} | ${row.ms.toFixed(1)} | ${(row.mb / (row.ms / 1000)).toFixed(1)} | ${row.events} | ${row.segments} | ${row.state} | ${row.heapMb.toFixed(1)} |`)
  }

  console.log('\n## A keyframe block as one-byte messages into one GopCache\n')
  console.log('| format | messages | CPU ms | retainedBytes | heap held after GC (MB) | snapshot parts |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
  for (const format of ['webm', 'mp4'] as const) {
    for (const count of [300_000, 2_000_000]) {
      const row = tinyMessages(format, count)
      console.log(`| ${format} | ${row.messages} | ${row.ms.toFixed(0)} | ${row.retained} | ${row.heapMb.toFixed(1)} | ${row.snapshotParts} |`)
    }
  }

  console.log(`\n## Real streams: headers the scanners read, segments (${SECONDS} s each)\n`)
  console.log('| stream | bytes | elements/s | segments/s | most elements in a 64 KB message | in a 200 ms message | most segments in a 64 KB message | in a 200 ms message |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const [name, bytes] of real) {
    const s: Structure = structure(name.startsWith('webm') ? 'webm' : 'mp4', bytes)
    const perTimeslice = Math.ceil(bytes.length / (SECONDS * 5))
    console.log(`| ${name} | ${bytes.length} | ${(s.elements.length / SECONDS).toFixed(0)} | ${(s.segments.length / SECONDS).toFixed(1)} | ${s.most(s.elements, 64 * 1024)} | ${s.most(s.elements, perTimeslice)} | ${s.most(s.segments, 64 * 1024)} | ${s.most(s.segments, perTimeslice)} |`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
