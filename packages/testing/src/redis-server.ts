import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from './faults.js'

interface Teardown { teardown (fn: () => unknown): void }

/** One PING over a fresh TCP connection to 127.0.0.1:`port`: whether it answered +PONG within `timeoutMs`. */
export async function redisAnswersPing (port: number, timeoutMs = 500): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/**
 * A redis-server of the test's own on a spare port of 127.0.0.1 (never the
 * shared 6379), no persistence, killed by its PID only.
 */
export interface RedisServer {
  port: number
  /** redis://127.0.0.1:<port> */
  url: string
  /** The PID of the current server process (undefined before the first start). */
  readonly pid: number | undefined
  /** Whether the current server process is alive. */
  readonly running: boolean
  /** What the server printed (warnings and up) since the first start. */
  log (): string
  /** kill -9 by PID; resolves once the process is gone. */
  kill (): Promise<void>
  /** Starts it again on the same port (empty: nothing was saved); resolves once it answers PING. */
  start (): Promise<void>
}

/**
 * Starts a throwaway redis-server (`redis-server` on PATH); it is killed and its directory removed at teardown.
 * `args` adds options (given the server's directory), the same on every start.
 */
export async function startRedisServer (t: Teardown, options: { port?: number, args?: (dir: string) => string[] } = {}): Promise<RedisServer> {
  const port = options.port ?? await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'ss-redis-'))
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let log = ''
  const alive = (proc: ChildProcess | undefined): proc is ChildProcess => proc !== undefined && proc.exitCode === null && proc.signalCode === null

  const kill = async (): Promise<void> => {
    const proc = child
    if (!alive(proc)) return
    proc.kill('SIGKILL')
    await exited
  }

  const start = async (): Promise<void> => {
    if (alive(child)) throw new Error(`redis-server on port ${port} is already running (pid ${child.pid})`)
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning',
      ...(options.args?.(dir) ?? []),
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    proc.stdout!.on('data', (chunk: Buffer) => { log += chunk.toString() })
    proc.stderr!.on('data', (chunk: Buffer) => { log += chunk.toString() })
    exited = new Promise((resolve) => proc.once('exit', () => resolve()))
    const died = exited.then(() => { throw new Error(`redis-server on port ${port} exited (${proc.exitCode ?? proc.signalCode}): ${log}`) })
    died.catch(() => {})
    await Promise.race([waitFor(`redis-server on port ${port} answering PING`, async () => await redisAnswersPing(port), 10_000, 20), died])
  }

  t.teardown(async () => {
    await kill()
    rmSync(dir, { recursive: true, force: true })
  })
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid () { return child?.pid },
    get running () { return alive(child) },
    log: () => log,
    kill,
    start,
  }
}
