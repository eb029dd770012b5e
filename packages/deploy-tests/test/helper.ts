import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { parse, parseAllDocuments } from 'yaml'
import { CLI, REPO_ROOT, tempDir } from '@streaming-service/testing'

interface Teardown { teardown (fn: () => unknown): void }

export { REPO_ROOT }
export const DEPLOY = join(REPO_ROOT, 'deploy')

export const readText = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8')
/** YAML as Docker Compose and Kubernetes read it (`<<:` merge keys included). */
export const readYaml = <T = any>(path: string): T => parse(readText(path), { merge: true }) as T
export const readYamlDocuments = <T = any>(path: string): T[] => parseAllDocuments(readText(path), { merge: true }).map((doc) => {
  if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`)
  return doc.toJS() as T
})

/** A temporary directory removed at teardown (the artifact alone is ~60 MB). */
export function scratchDir (t: Teardown, prefix: string): string {
  const dir = tempDir(prefix)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * The absolute path of a program the tests run for real. Missing: fails with
 * how to install it (`npm test`, through scripts/setup.sh, installs these from Debian).
 */
export function program (name: string, debianPackage: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
  for (const dir of dirs) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name)
  }
  throw new Error(`${name} is not installed: apt-get install ${debianPackage} (Debian 12; npm test installs it when missing, as root)`)
}

/** Variable names listed in .env.example, commented out or not. */
export function envExampleKeys (): Set<string> {
  return new Set([...readText('.env.example').matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]!))
}

/** The CLI's commands and `migrate` actions, from its own --help (so roles in manifests are checked against the code). */
export function cliCommands (): { commands: Set<string>, migrateActions: Set<string> } {
  const help = (args: string[]) => {
    const run = spawnSync(process.execPath, [CLI, ...args], { cwd: tempDir(), encoding: 'utf8' })
    if (run.status !== 0) throw new Error(`streaming-service ${args.join(' ')} exited ${run.status}: ${run.stderr}`)
    return run.stdout
  }
  const commands = new Set([...help(['--help']).matchAll(/^ {2}streaming-service ([a-z-]+)/gm)].map((m) => m[1]!))
  const choices = /\[choices: ([^\]]+)\]/.exec(help(['migrate', '--help']))?.[1] ?? ''
  const migrateActions = new Set([...choices.matchAll(/"([a-z]+)"/g)].map((m) => m[1]!))
  return { commands, migrateActions }
}

export interface Program {
  child: ChildProcess
  /** The last 64 KB of its stdout and stderr. */
  output (): string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** SIGTERM (SIGKILL after 10 s), by PID; waits for the exit. */
  stop (): Promise<void>
}

/** Spawns a program; it is stopped at teardown if still running. */
export function startProgram (t: Teardown, file: string, args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Program {
  const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-65_536) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
    child.on('error', (err) => { output += `\nspawn failed: ${err.message}`; resolve({ code: null, signal: null }) })
  })
  const running = () => child.exitCode === null && child.signalCode === null && child.pid !== undefined
  const stop = async () => {
    if (!running()) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  t.teardown(stop)
  return { child, output: () => output, exited, stop }
}

/** Runs a program to completion. */
export function runProgram (file: string, args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): { status: number | null, output: string } {
  const run = spawnSync(file, args, { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', timeout: options.timeoutMs ?? 120_000 })
  if (run.error !== undefined) throw run.error
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}
