import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
/** The built CLI, as ops run it (`pnpm build` first; `pnpm test` does). */
export const CLI = join(REPO_ROOT, 'packages/cli/dist/bin.js')

interface Teardown { teardown (fn: () => unknown): void }

export interface RunResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Environment for a spawned process: no inherited DB/Redis/app settings, a quiet log. */
export function serviceEnv (env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(APP_|HTTP_|DB_|DATABASE_URL|DATA_DIR|REDIS_|RELAY_|WS_|SESSION_|SHUTDOWN_|LOG_|MIGRATIONS_|SEEDS_|AUTH_|API_KEYS|CORS_|TRUST_PROXY|WEBHOOK_|PRESENCE_)/.test(key)) base[key] = value
  }
  return { ...base, APP_ENV: 'test', ...env }
}

export function tempDir (prefix = 'ss-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** Runs a CLI command to completion (in a temporary working directory, so no .env applies). */
export async function runCli (args: string[], env: Record<string, string>, options: { cwd?: string, timeoutMs?: number, bin?: string } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [options.bin ?? CLI, ...args], { cwd: options.cwd ?? tempDir(), env: serviceEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])))
  clearTimeout(timer)
  return { code, signal, stdout, stderr }
}

export interface ServiceProcess {
  child: ChildProcess
  /** http://127.0.0.1:<port> */
  url: string
  port: number
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>
  stderr: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** Waits for a log line matching the predicate. */
  waitForLog (predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  stop (signal?: NodeJS.Signals): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * Starts `streaming-service <args>` on a free port (HTTP_PORT=0) and resolves
 * once it logs "listening". Killed at teardown if still running. `bin` runs
 * another build of the CLI (e.g. the deployed artifact) instead of the repository's.
 */
export async function startService (
  t: Teardown, args: string[], env: Record<string, string>, options: { cwd?: string, timeoutMs?: number, bin?: string, nodeArgs?: string[] } = {}
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.bin ?? CLI, ...args], {
    cwd: options.cwd ?? tempDir(),
    env: serviceEnv({ APP_HOST: '127.0.0.1', HTTP_PORT: '0', LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const logs: Array<Record<string, unknown>> = []
  const waiters = new Set<{ predicate: (line: Record<string, unknown>) => boolean, resolve: (line: Record<string, unknown>) => void }>()
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>
    try { line = JSON.parse(text) as Record<string, unknown> } catch { return }
    logs.push(line)
    for (const waiter of waiters) {
      if (waiter.predicate(line)) { waiters.delete(waiter); waiter.resolve(line) }
    }
  })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })

  const waitForLog = async (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000) => {
    const seen = logs.find(predicate)
    if (seen !== undefined) return seen
    return await new Promise<Record<string, unknown>>((resolve, reject) => {
      const waiter = { predicate, resolve: (line: Record<string, unknown>) => { clearTimeout(timer); resolve(line) } }
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}`))
      }, timeoutMs)
      waiters.add(waiter)
      void exited.then(({ code, signal }) => {
        if (waiters.delete(waiter)) { clearTimeout(timer); reject(new Error(`process exited (${code ?? signal}) before the log line; stderr: ${stderr}`)) }
      })
    })
  }

  const listening = await waitForLog((line) => line.msg === 'listening', options.timeoutMs ?? 30_000)
  const port = Number(listening.port)
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    logs,
    stderr: () => stderr,
    exited,
    waitForLog,
    async stop (signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return await exited
    },
  }
}
