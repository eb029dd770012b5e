import { execFile, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

interface Teardown { teardown (fn: () => unknown): void }

const run = promisify(execFile)

/**
 * Makes test streams with Debian's ffmpeg in a temporary directory removed
 * at teardown: `make(name, encoderArgs)` encodes 4 s of the lavfi test
 * pattern at `size` and returns the file's bytes.
 */
export async function mediaMaker (t: Teardown, prefix: string, size: string): Promise<MediaMaker> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const make = async (name: string, args: string[]): Promise<Buffer> => {
    await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=25`, '-t', '4', ...args, join(dir, name)])
    return await readFile(join(dir, name))
  }
  return Object.assign(make, { pathOf: (name: string) => join(dir, name) })
}

export interface MediaMaker {
  (name: string, args: string[]): Promise<Buffer>
  /** Where a made file is (for ffprobe). */
  pathOf (name: string): string
}

/** ffprobe's command line output for a made file. */
export async function ffprobe (args: string[]): Promise<string> {
  return (await run('ffprobe', args)).stdout
}

export { prng } from '@streaming-service/testing'

/** Cuts `bytes` into messages of 1 to `max` bytes (views, not copies). */
export function split (bytes: Buffer, random: () => number, max: number): Buffer[] {
  const messages: Buffer[] = []
  for (let offset = 0; offset < bytes.length;) {
    const size = 1 + Math.floor(random() * max)
    messages.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return messages
}

/** Decodes with `ffmpeg -v error -i pipe:0`: exit code, error output, decoded frame count. */
export async function decode (bytes: Buffer): Promise<{ code: number | null, errors: string, frames: number }> {
  const child = spawn('ffmpeg', ['-hide_banner', '-v', 'error', '-i', 'pipe:0', '-f', 'framecrc', '-'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let errors = ''
  child.stdout.setEncoding('utf8').on('data', (data: string) => { out += data })
  child.stderr.setEncoding('utf8').on('data', (data: string) => { errors += data })
  child.stdin.on('error', () => {})
  child.stdin.end(bytes)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const frames = out.split('\n').filter((line) => /^\d+,/.test(line)).length
  return { code, errors, frames }
}
