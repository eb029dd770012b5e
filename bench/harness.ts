/**
 * What the benchmark needs around the load: a teardown collector (the
 * testing helpers expect tap's `t.teardown`), the two systems under test,
 * CPU and memory readings from /proc, and a few words with Redis.
 */
import { spawn, execFileSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { createInterface } from 'node:readline'
import ts from 'typescript'
import { streamUrl } from '@streaming-service/protocol'
import {
  createTestDatabase, runCli, startService, TEST_REDIS_URL, TEST_SERVER_URL, type CreatedSession, type ServiceProcess,
} from '@streaming-service/testing'

/** A dependency (PostgreSQL, Redis, the built CLI) is missing: the run cannot start. */
export class BenchDependencyError extends Error {}

/** Collects cleanup functions like tap's `t.teardown`; `run()` calls them last-in first-out. */
export class Teardowns {
  readonly #fns: Array<() => unknown> = []

  teardown (fn: () => unknown): void {
    this.#fns.push(fn)
  }

  async run (): Promise<void> {
    for (let fn = this.#fns.pop(); fn !== undefined; fn = this.#fns.pop()) {
      try {
        await fn()
      } catch (err) {
        process.stderr.write(`bench: cleanup failed: ${(err as Error).message}\n`)
      }
    }
  }
}

// ---- /proc --------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** utime + stime of one process, in seconds. */
export function cpuSeconds (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the parenthesised command name start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

/**
 * Seconds the process's main thread spent runnable but waiting for a CPU
 * (/proc/<pid>/schedstat, second field, ns): how much other work on the
 * machine delayed it.
 */
export function runQueueSeconds (pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9
}

export function rssBytes (pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? 0 : Number(match[1]) * 1024
  } catch {
    return 0 // exited
  }
}

/** Peak of the summed RSS of `pids` (and each one's peak), sampled every `intervalMs` from construction. */
export class RssSampler {
  readonly #pids: number[]
  readonly #timer: NodeJS.Timeout
  /** The first sample: the idle processes before any load. */
  readonly initialBytes: number
  peakBytes = 0
  readonly peakPerProcess: number[]

  constructor (pids: number[], intervalMs = 250) {
    this.#pids = pids
    this.peakPerProcess = pids.map(() => 0)
    this.initialBytes = this.sample()
    this.#timer = setInterval(() => this.sample(), intervalMs)
  }

  sample (): number {
    const each = this.#pids.map(rssBytes)
    each.forEach((bytes, i) => { if (bytes > this.peakPerProcess[i]!) this.peakPerProcess[i] = bytes })
    const total = each.reduce((sum, bytes) => sum + bytes, 0)
    if (total > this.peakBytes) this.peakBytes = total
    return total
  }

  stop (): number {
    clearInterval(this.#timer)
    this.sample()
    return this.peakBytes
  }
}

/** Busy and total CPU-seconds of the whole machine, all cores (first line of /proc/stat). */
export function machineCpu (): { busy: number, total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  const idle = fields[3]! + fields[4]!
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK }
}

// ---- Redis ----------------------------------------------------------------

/** One command over a raw RESP connection (no client library: this is a preflight and a stats read). */
export async function redisCommand (redisUrl: string, args: string[], timeoutMs = 3000): Promise<string> {
  const url = new URL(redisUrl)
  const commands: string[][] = []
  if (url.password !== '') commands.push(url.username === '' ? ['AUTH', decodeURIComponent(url.password)] : ['AUTH', decodeURIComponent(url.username), decodeURIComponent(url.password)])
  commands.push(args)
  const encoded = commands.map((command) => `*${command.length}\r\n${command.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`).join('')
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port || 6379) })
    let buffer = Buffer.alloc(0)
    const replies: string[] = []
    const fail = (err: Error) => { socket.destroy(); reject(err) }
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)))
    socket.on('error', fail)
    socket.on('connect', () => socket.write(encoded))
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        const eol = buffer.indexOf('\r\n')
        if (eol < 0) return
        const head = buffer.subarray(0, eol).toString()
        let reply: string
        if (head[0] === '$') {
          const length = Number(head.slice(1))
          if (buffer.length < eol + 2 + length + 2) return
          reply = buffer.subarray(eol + 2, eol + 2 + length).toString()
          buffer = buffer.subarray(eol + 2 + length + 2)
        } else {
          reply = head.slice(1)
          buffer = buffer.subarray(eol + 2)
          if (head[0] === '-') { fail(new Error(`Redis: ${reply}`)); return }
        }
        replies.push(reply)
        if (replies.length === commands.length) {
          socket.end()
          resolve(reply)
          return
        }
      }
    })
  })
}

export async function checkRedis (redisUrl: string): Promise<void> {
  try {
    const reply = await redisCommand(redisUrl, ['PING'])
    if (reply !== 'PONG') throw new Error(`PING answered "${reply}"`)
  } catch (err) {
    throw new BenchDependencyError(`Redis is not reachable at ${redisUrl} (${(err as Error).message}): start it or set TEST_REDIS_URL`, { cause: err })
  }
}

/** used_cpu_user + used_cpu_sys of the Redis server, in seconds. */
export async function redisCpuSeconds (redisUrl: string): Promise<number> {
  const info = await redisCommand(redisUrl, ['INFO', 'cpu'])
  const read = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
  return read('used_cpu_user') + read('used_cpu_sys')
}

// ---- Systems under test ---------------------------------------------------

export interface SystemUnderTest {
  /** The server processes whose CPU and RSS are measured. */
  pids: number[]
  /** ws URLs for one session: its publisher's and its operators'. */
  openSession (index: number, operatorRelays: number[]): Promise<{ publisherUrl: string, operatorUrls: string[] }>
  /** Relay /metrics samples read after the run, summed over relays (drops, errors, latency sums), or undefined for the ceiling. */
  counters (): Promise<Record<string, number> | undefined>
  /** Warning and error log lines of the servers, counted by message. */
  warnings (): Record<string, number>
}

/** Sums the samples of every `/metrics` series whose name matches. */
async function scrape (urls: string[], name: RegExp): Promise<Record<string, number>> {
  const totals: Record<string, number> = {}
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text()
    for (const line of text.split('\n')) {
      const match = /^([a-z_:]+)(\{[^}]*\})?\s+(\S+)/.exec(line)
      if (match === null || !name.test(match[1]!)) continue
      const key = `${match[1]}${match[2] ?? ''}`
      totals[key] = (totals[key] ?? 0) + Number(match[3])
    }
  }
  return totals
}

/**
 * A fresh database, migrated once for the whole run (`migrate up` from the
 * built CLI); dropped when `scope` is torn down.
 */
export async function prepareDatabase (scope: Teardowns): Promise<Record<string, string>> {
  const db = await createTestDatabase(scope, 'bench').catch((err: unknown) => {
    throw new BenchDependencyError(`${(err as Error).message} (TEST_DATABASE_URL=${TEST_SERVER_URL})`, { cause: err })
  })
  const migrated = await runCli(['migrate', 'up'], db.env)
  if (migrated.code !== 0) throw new Error(`migrate up failed: ${migrated.stderr}`)
  return db.env
}

/**
 * The split deployment as ops run it (what `startCluster` of the testing
 * package starts, on an already migrated database): control plane + `relays`
 * relay processes from the built CLI, the local Redis under a key prefix of
 * their own. Publisher of session i on relay `publisherRelay(i)`; operator j
 * on relay `operatorRelays[j]`.
 */
export async function startBenchCluster (scope: Teardowns, options: {
  dbEnv: Record<string, string>
  relays: number
  publisherRelay: (index: number) => number
  /** Relays write V8 CPU profiles here (--cpu-prof), flushed when they stop gracefully. */
  profileDir?: string
  /** SPEC §9's AUTH_MODE: `token` makes every operator present a minted token. */
  auth: 'open' | 'token'
  /** Another backplane than the local Redis (cluster.ts: REDIS_URL or REDIS_CLUSTER_NODES of its own servers). */
  redisEnv?: Record<string, string>
}): Promise<SystemUnderTest> {
  const apiKey = randomBytes(24).toString('hex')
  const env = {
    ...options.dbEnv,
    ...(options.redisEnv ?? { REDIS_URL: TEST_REDIS_URL }),
    REDIS_KEY_PREFIX: `ssbench:${randomBytes(4).toString('hex')}:`,
    SESSION_MAX_OPERATORS: '10000',
    LOG_LEVEL: 'info', // startService waits for the "listening" line
    ...(options.auth === 'token' ? { AUTH_MODE: 'token', API_KEYS: apiKey, AUTH_JWT_SECRET: randomBytes(32).toString('hex') } : { AUTH_MODE: 'open' }),
  }
  const headers = { 'content-type': 'application/json', ...(options.auth === 'token' ? { authorization: `Bearer ${apiKey}` } : {}) }
  /** In token mode every operator presents a token minted by the control plane (SPEC §9). */
  const operatorToken = async (sessionId: string, userId: string): Promise<{ token?: string }> => {
    if (options.auth !== 'token') return {}
    const res = await fetch(`${controlPlane.url}/sessions/${sessionId}/tokens`, { method: 'POST', headers, body: JSON.stringify({ user_id: userId }) })
    if (res.status !== 201) throw new Error(`POST /sessions/${sessionId}/tokens: ${res.status} ${await res.text()}`)
    return { token: (await res.json() as { token: string }).token }
  }
  const profiled = options.profileDir === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] }
  const [controlPlane, ...relays] = await Promise.all([
    startService(scope, ['control-plane'], env),
    ...Array.from({ length: options.relays }, async () => await startService(scope, ['relay'], { ...env, SHUTDOWN_DRAIN: '0ms' }, profiled)),
  ]) as [ServiceProcess, ...ServiceProcess[]]
  // A profile is written at a graceful exit only: stop them before the teardown's SIGKILL.
  if (options.profileDir !== undefined) scope.teardown(async () => { await Promise.all(relays.map(async (relay) => await relay.stop('SIGTERM'))) })
  const wsUrl = (relay: number, sessionId: string, userId: string, credential: { streamKey?: string, token?: string }) => {
    return streamUrl({ base: `ws://127.0.0.1:${relays[relay % relays.length]!.port}`, sessionId, userId, ...credential })
  }
  return {
    pids: [controlPlane, ...relays].map((service) => service.child.pid!),
    async openSession (index, operatorRelays) {
      const res = await fetch(`${controlPlane.url}/sessions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ client_id: randomUUID() }),
      })
      if (res.status !== 201) throw new Error(`POST /sessions: ${res.status} ${await res.text()}`)
      const session = await res.json() as CreatedSession
      return {
        publisherUrl: wsUrl(options.publisherRelay(index), session.session_id, session.client_id, { streamKey: session.stream_key }),
        operatorUrls: await Promise.all(operatorRelays.map(async (relay, j) => {
          return wsUrl(relay, session.session_id, `bench-op-${j}`, await operatorToken(session.session_id, `bench-op-${j}`))
        })),
      }
    },
    async counters () {
      return await scrape(relays.map((relay) => relay.url),
        /dropped_total$|^backplane_(publish_errors|reconnects)_total$|^relay_latency_seconds_(sum|count)$|canary_round_trip_seconds$/)
    },
    warnings () {
      const counts: Record<string, number> = {}
      for (const service of [controlPlane, ...relays]) {
        for (const line of service.logs) {
          // pino levels: 40 warn, 50 error, 60 fatal
          if (typeof line.level === 'number' && line.level >= 40) counts[String(line.msg)] = (counts[String(line.msg)] ?? 0) + 1
        }
      }
      return counts
    },
  }
}

/**
 * Transpiles a baseline server (ceiling-server.ts, naive-relay.ts) to plain
 * JavaScript, its packages imported by absolute URL, in a temporary
 * directory removed at teardown: it runs on bare `node`, no loader inflating it.
 */
function buildBaseline (scope: Teardowns, name: string): string {
  const source = readFileSync(new URL(`./${name}.ts`, import.meta.url), 'utf8')
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
  })
  const dir = mkdtempSync(join(tmpdir(), 'ss-bench-'))
  scope.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, `${name}.mjs`)
  const resolved = outputText.replace(/from\s+['"](ws|ioredis)['"]/g, (_m, pkg: string) => `from ${JSON.stringify(import.meta.resolve(pkg))}`)
  writeFileSync(file, resolved)
  return file
}

/** Starts a baseline server process and waits for its `listening` line; killed at teardown. */
async function startBaseline (scope: Teardowns, file: string, args: string[] = []): Promise<{ pid: number, port: number }> {
  const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  scope.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  })
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (text) => {
      try {
        const line = JSON.parse(text) as { msg?: string, port?: number }
        if (line.msg === 'listening') resolve(line.port!)
      } catch {}
    })
    child.once('exit', (code) => reject(new Error(`${basename(file)} exited (${code}) before listening`)))
  })
  return { pid: child.pid!, port }
}

export async function startCeiling (scope: Teardowns): Promise<SystemUnderTest> {
  const { pid, port } = await startBaseline(scope, buildBaseline(scope, 'ceiling-server'))
  return {
    pids: [pid],
    async openSession (index, operatorRelays) {
      const url = `ws://127.0.0.1:${port}/room/${index}`
      return { publisherUrl: url, operatorUrls: operatorRelays.map(() => url) }
    },
    async counters () { return undefined },
    warnings () { return {} },
  }
}

/** The naive cluster (naive-relay.ts): `relays` ws + ioredis nodes on the local Redis, under a channel prefix of their own. */
export async function startNaive (scope: Teardowns, options: { relays: number, publisherRelay: (index: number) => number }): Promise<SystemUnderTest> {
  const file = buildBaseline(scope, 'naive-relay')
  const prefix = `naivebench:${randomBytes(4).toString('hex')}:`
  const nodes = await Promise.all(Array.from({ length: options.relays }, async () => await startBaseline(scope, file, [TEST_REDIS_URL, prefix])))
  const url = (relay: number, index: number, publish: boolean) => `ws://127.0.0.1:${nodes[relay % nodes.length]!.port}/room/${index}${publish ? '?publish' : ''}`
  return {
    pids: nodes.map((node) => node.pid),
    async openSession (index, operatorRelays) {
      return { publisherUrl: url(options.publisherRelay(index), index, true), operatorUrls: operatorRelays.map((relay) => url(relay, index, false)) }
    },
    async counters () { return undefined },
    warnings () { return {} },
  }
}
