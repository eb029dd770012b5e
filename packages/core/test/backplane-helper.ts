import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import { createLogger, type Backplane, type Frame, type FrameKind, type Logger } from '@streaming-service/core'

/** The shared Redis of the test machine; tests isolate themselves by key prefix, never by flushing. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Teardown { teardown (fn: () => unknown): void }

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** A prefix no other test run uses, like a deployment's REDIS_KEY_PREFIX. */
export function randomPrefix (label = 'bp'): string {
  return `sstest:${label}:${randomBytes(4).toString('hex')}:`
}

/** Polls `check` until it returns truthy (or stops throwing) and returns that value. */
export async function waitFor<T> (check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== false && value !== undefined && value !== null) return value
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not met within ${timeoutMs} ms${lastError === undefined ? '' : `: ${(lastError as Error).message}`}`)
    }
    await sleep(10)
  }
}

/** A pino logger whose JSON lines are kept in memory. */
export function captureLogger (level = 'debug'): { logger: Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString().split('\n')) {
        if (text !== '') lines.push(JSON.parse(text) as Record<string, unknown>)
      }
      callback()
    },
  })
  return { logger: createLogger(level, 'backplane-test', destination), lines }
}

/**
 * Publishes every frame, keeping fewer than `window` in flight so none is
 * dropped for backpressure (what a publisher at a realistic rate sees).
 * Returns how many publish() calls returned false.
 */
export async function publishPaced (node: Backplane, sessionId: string, frames: readonly Frame[], window = 32): Promise<number> {
  let refused = 0
  for (const frame of frames) {
    while (node.stats().inFlight >= window) await new Promise((resolve) => setImmediate(resolve))
    if (!node.publish(sessionId, frame)) refused++
  }
  return refused
}

// Kinds are opaque to the backplane; 2 stands for a text payload here, only to vary the content.
const TEXT_KIND = 2
const KINDS: readonly FrameKind[] = [1, TEXT_KIND, 3]

/**
 * `count` frames of mixed kinds and sizes with recognisable content: an empty
 * payload first, a 1 MiB one in the middle, the rest 1 B–64 KiB. `seq` counts
 * from `firstSeq`.
 */
export function mixedFrames (count: number, firstSeq = 0): Frame[] {
  const frames: Frame[] = []
  for (let i = 0; i < count; i++) {
    const size = i === 0 ? 0 : i === Math.floor(count / 2) ? 1024 * 1024 : 1 + ((i * 7919) % (64 * 1024))
    const kind = KINDS[i % KINDS.length]!
    const payload = kind === TEXT_KIND
      ? Buffer.from(`text ${i} ${'é✓'.repeat(Math.floor(size / 6))}`)
      : randomBytes(size)
    frames.push({ kind, seq: firstSeq + i, payload })
  }
  return frames
}

/** An admin connection to a Redis (for PUBSUB, CLIENT, CONFIG), closed at teardown. */
export async function adminClient (t: Teardown, url = TEST_REDIS_URL): Promise<Redis> {
  const admin = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 200, lazyConnect: true })
  admin.on('error', () => {})
  await admin.connect()
  t.teardown(() => { admin.disconnect() })
  return admin
}

export async function numsub (admin: Redis, channel: string): Promise<number> {
  const reply = await admin.call('PUBSUB', 'NUMSUB', channel) as [string, number]
  return Number(reply[1])
}

export async function pubsubChannels (admin: Redis, pattern: string): Promise<string[]> {
  return (await admin.call('PUBSUB', 'CHANNELS', pattern) as string[]).map(String).sort()
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

async function pingOnce (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/**
 * A redis-server of the test's own on a spare port (never the shared 6379),
 * killed by its PID only. `kill()` is kill -9; `start()` brings it back on
 * the same port and resolves once it answers PING.
 */
export interface ThrowawayRedis {
  port: number
  url: string
  readonly pid: number | undefined
  /** What the server logged (warnings and up) since the test started it. */
  log (): string
  kill (): Promise<void>
  start (): Promise<void>
}

export async function throwawayRedis (t: Teardown): Promise<ThrowawayRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'ss-redis-'))
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let log = ''

  const start = async (): Promise<void> => {
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning',
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    let stderr = ''
    proc.stdout!.on('data', (chunk: Buffer) => { log += chunk.toString() })
    proc.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    exited = new Promise((resolve) => proc.once('exit', () => resolve()))
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode}): ${stderr}`)
      return await pingOnce(port)
    }, 10_000, `redis-server on port ${port} answering PING`)
  }

  const kill = async (): Promise<void> => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill('SIGKILL')
    await exited
  }

  await start()
  t.teardown(async () => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })
  return { port, url: `redis://127.0.0.1:${port}`, get pid () { return child?.pid }, log: () => log, kill, start }
}

/** Active handles by type (sockets, timers…), to show a close() leaves nothing behind. */
export function activeResourceCounts (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const name of process.getActiveResourcesInfo()) counts[name] = (counts[name] ?? 0) + 1
  return counts
}
