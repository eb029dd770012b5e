// The production artifact, built exactly as deploy/Dockerfile builds it
// (deploy/build-artifact.sh: `pnpm deploy --prod` + migrations and seeds),
// run from a directory outside the repository: a runtime dependency missing
// from a package.json, or a file the CLI needs at run time, fails here.
// The Dockerfile, .dockerignore and Makefile are checked against it.
import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import t from 'tap'
import { defaults } from '@streaming-service/core'
import { connected, freePort, runCli, startService, waitFor } from '@streaming-service/testing'
import { cliCommands, readText, readYaml, REPO_ROOT, runProgram, scratchDir } from './helper.js'

const appDir = join(scratchDir(t, 'ss-artifact-'), 'app')
const started = Date.now()
const build = runProgram('sh', ['deploy/build-artifact.sh', appDir], { cwd: REPO_ROOT, timeoutMs: 180_000 })
const buildMs = Date.now() - started
const bin = join(appDir, 'dist/bin.js')

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerfile (): Array<{ instruction: string, args: string }> {
  return readText('deploy/Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'))
    .map((line) => {
      const [, instruction, args] = /^\s*(\S+)\s+(.*)$/.exec(line)!
      return { instruction: instruction!.toUpperCase(), args: args!.replace(/\s+/g, ' ').trim() }
    })
}

/** The HEALTHCHECK's CMD, as Docker runs it. */
function healthcheckProbe (): string[] {
  const healthcheck = dockerfile().find((s) => s.instruction === 'HEALTHCHECK')!.args
  return JSON.parse(/CMD (\[.*\])$/.exec(healthcheck)![1]!) as string[]
}

/** Runs a health check command (a node one-liner) with this environment: its exit status. */
const runProbe = (probe: string[], env: Record<string, string>) =>
  runProgram(process.execPath, probe.slice(1), { env: { PATH: process.env.PATH, ...env }, timeoutMs: 10_000 }).status

function walk (dir: string, visit: (path: string) => void): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    visit(path)
    const stat = lstatSync(path)
    if (stat.isDirectory() && !stat.isSymbolicLink()) walk(path, visit)
  }
}

t.test('the artifact holds production dependencies only, self-contained, with migrations and without the demo seed', async (t) => {
  if (build.status !== 0) t.comment(build.output)
  t.equal(build.status, 0, 'deploy/build-artifact.sh succeeds')
  t.comment(`deploy/build-artifact.sh took ${buildMs} ms`)
  t.ok(existsSync(bin), 'dist/bin.js, the image\'s entrypoint')
  t.ok(existsSync(join(appDir, 'migrations/00001_streaming_sessions.js')), 'migrations/ next to package.json')
  t.notOk(existsSync(join(appDir, 'seeds')), 'no seeds/: the demo session (fixed id and key) never ships')

  const installed = readdirSync(join(appDir, 'node_modules/.pnpm'))
  // (yaml is not in this list any more: @fastify/swagger, which serves /openapi.json, needs it at run time.)
  for (const dev of ['typescript@', 'tap@', 'tsx@', 'eslint@', 'esbuild@', 'playwright-core@', '@streaming-service+testing@', '@streaming-service+client@']) {
    t.notOk(installed.some((name) => name.startsWith(dev)), `no ${dev.slice(0, -1)} (a development dependency)`)
  }
  for (const needed of ['@streaming-service+core@', '@streaming-service+relay@', '@streaming-service+control-plane@', '@streaming-service+console@', 'fastify@', 'postgres@', 'ioredis@']) {
    t.ok(installed.some((name) => name.startsWith(needed)), `${needed.slice(0, -1)} is installed`)
  }

  let links = 0
  const outside: string[] = []
  walk(join(appDir, 'node_modules'), (path) => {
    if (!lstatSync(path).isSymbolicLink()) return
    links++
    const target = realpathSync(path)
    if (!target.startsWith(appDir + sep)) outside.push(`${relative(appDir, path)} -> ${target}`)
  })
  t.ok(links > 0)
  t.same(outside, [], `none of ${links} links leaves the artifact (workspace packages are copied, not linked)`)
})

t.test('`streaming-service api` from the artifact serves a session: REST, a stream, the console, readiness, SIGTERM', async (t) => {
  t.equal(build.status, 0, 'the artifact was built')
  const dataDir = join(scratchDir(t, 'ss-artifact-data-'), 'data')
  const service = await startService(t, ['api'], { DATA_DIR: dataDir, SHUTDOWN_DRAIN: '0ms' }, { bin, cwd: scratchDir(t, 'ss-artifact-cwd-') })
  t.ok(service.logs.some((line) => typeof line.msg === 'string' && line.msg.includes('embedded PGlite')), 'embedded database (its template is in the artifact)')

  const clientId = randomUUID()
  const created = await fetch(`${service.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: clientId }) })
  t.equal(created.status, 201)
  const session = await created.json() as { session_id: string, stream_key: string, ws_url: string }
  t.match(session.ws_url, `ws://127.0.0.1:${service.port}/ws/stream/${session.session_id}/${clientId}`)

  const operator = await connected(t, session.ws_url.replace(clientId, 'op-1'))
  const publisher = await connected(t, `${session.ws_url}?stream_key=${session.stream_key}`)
  await waitFor('the publisher online', async () => {
    const res = await fetch(`${service.url}/sessions/${session.session_id}`)
    return ((await res.json()) as { publisher_online: boolean }).publisher_online
  })
  const frames = Array.from({ length: 20 }, () => randomBytes(4096))
  for (const frame of frames) await publisher.send(frame)
  const received = await operator.waitForMessages(frames.length)
  t.ok(received.every((message, i) => message.binary && message.data.equals(frames[i]!)), '20 binary frames arrive byte for byte, in order')

  const page = await fetch(`${service.url}/`)
  t.equal(page.status, 200, 'the console is in the artifact')
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), /<html/i)
  const ready = await fetch(`${service.url}/ready`)
  t.equal(ready.status, 200)
  t.match(await ready.json(), { status: 'ready', checks: { database: 'ok', migrations: 'ok' } })
  t.match(await (await fetch(`${service.url}/metrics`)).text(), /relay_messages_total\{direction="in",role="api"\} 20/)

  // The image's HEALTHCHECK and docker-compose.yml's, run as Docker would.
  const probe = healthcheckProbe()
  t.equal(runProbe(probe, { HTTP_PORT: String(service.port) }), 0, 'Dockerfile HEALTHCHECK: healthy while the api answers')
  t.equal(runProbe(probe, { HTTP_PORT: String(await freePort()) }), 1, 'Dockerfile HEALTHCHECK: unhealthy when nothing answers')
  const composeProbe = (readYaml('docker-compose.yml')['x-app'].healthcheck.test as string[]).map((arg) => arg.replace(':8090/', `:${service.port}/`))
  t.same(composeProbe.slice(0, 2), ['CMD', 'node'])
  t.equal(runProbe(composeProbe.slice(1), {}), 0, 'docker-compose.yml health check (/ready): healthy')

  t.same(await service.stop('SIGTERM'), { code: 0, signal: null }, 'SIGTERM: exit 0')
  const seeded = await runCli(['seed'], { DATA_DIR: dataDir }, { bin })
  t.equal(seeded.code, 0, `seed from the artifact finds migrations/ and no seeds: ${seeded.stderr}`)
  t.match(seeded.stdout, 'seeds: none found')
  const production = await runCli(['seed'], {
    APP_ENV: 'production', DB_HOST: '127.0.0.1', DB_PASSWORD: 'unused', AUTH_MODE: 'token', API_KEYS: 'k'.repeat(32), AUTH_JWT_SECRET: 's'.repeat(32),
  }, { bin })
  t.not(production.code, 0, 'seed refuses to run in production')
  t.match(production.stderr, 'SS_SEED_IN_PRODUCTION')
})

t.test('deploy/Dockerfile runs this artifact: build steps, entrypoint, non-root user, port, HEALTHCHECK (run for real)', async (t) => {
  t.equal(build.status, 0, 'the artifact was built')
  const steps = dockerfile()
  const froms = steps.filter((s) => s.instruction === 'FROM')
  t.equal(froms.length, 2, 'two stages: build and runtime')
  t.match(froms[0]!.args, /AS build$/)
  const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(readText('deploy/Dockerfile'))?.[1] ?? ''
  t.match(image, /^node:(\d+)-/, 'an official Node image')
  const enginesMajor = Number(/(\d+)/.exec(JSON.parse(readText('package.json')).engines.node)![1])
  t.ok(Number(/^node:(\d+)/.exec(image)?.[1]) >= enginesMajor, `${image} satisfies engines.node`)
  const pnpmVersion = /^ARG PNPM_VERSION=(\S+)$/m.exec(readText('deploy/Dockerfile'))?.[1]
  t.equal(`pnpm@${pnpmVersion}`, JSON.parse(readText('package.json')).packageManager, 'the pinned pnpm')

  const buildStage = steps.slice(steps.indexOf(froms[0]!), steps.indexOf(froms[1]!))
  const runtime = steps.slice(steps.indexOf(froms[1]!))
  const runs = buildStage.filter((s) => s.instruction === 'RUN').map((s) => s.args).join(' && ')
  t.match(runs, /pnpm install --offline --frozen-lockfile/)
  t.match(runs, /pnpm build && sh deploy\/build-artifact\.sh \/app/, 'builds, then the artifact tested here, into /app')
  t.ok(runtime.some((s) => s.instruction === 'COPY' && s.args === '--from=build /app /app'), 'the runtime stage gets the artifact and nothing else from the build')
  t.notOk(runtime.some((s) => s.instruction === 'COPY' && !s.args.startsWith('--from=build')), 'no sources in the runtime stage')
  const user = runtime.filter((s) => s.instruction === 'USER').at(-1)?.args
  t.ok(user !== undefined && user !== 'root' && user !== '0', `runs as ${user}, not root`)

  const entrypoint = JSON.parse(runtime.find((s) => s.instruction === 'ENTRYPOINT')!.args) as string[]
  t.same(entrypoint, ['node', '/app/dist/bin.js'], 'node runs the CLI directly (PID 1 gets SIGTERM)')
  t.ok(existsSync(join(appDir, relative('/app', entrypoint[1]!))), 'the entrypoint exists in the artifact')
  const cmd = JSON.parse(runtime.find((s) => s.instruction === 'CMD')!.args) as string[]
  t.same(cmd, ['api'])
  t.ok(cliCommands().commands.has(cmd[0]!), 'the default command is a CLI command')
  t.equal(runtime.find((s) => s.instruction === 'EXPOSE')?.args, String(defaults.HTTP_PORT), 'EXPOSE the default HTTP_PORT')
  const env = runtime.filter((s) => s.instruction === 'ENV').map((s) => s.args).join(' ')
  t.notMatch(env, /APP_ENV|HTTP_PORT|APP_PORT/, 'no APP_ENV/port defaults baked in: `docker run -e DB_HOST=…` and `-e APP_PORT=…` keep working')

  const probe = healthcheckProbe()
  t.equal(probe[0], 'node', 'HEALTHCHECK with node (the slim image has no curl); run for real in the test above')
  t.match(probe.join(' '), '/health', 'HEALTHCHECK: liveness, /health')
})

t.test('.dockerignore keeps local builds, installs and secrets out of the build context; make docker-build builds deploy/Dockerfile', async (t) => {
  const ignored = readText('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
  for (const pattern of ['**/node_modules', '**/dist', '.git', '**/.env', '.data', '.tap']) t.ok(ignored.includes(pattern), `.dockerignore: ${pattern}`)
  t.notOk(ignored.some((pattern) => /^(\*\*\/)?(packages|migrations|seeds|patches|pnpm-lock\.yaml|deploy\/build-artifact\.sh)$/.test(pattern)), 'nothing the build needs is ignored')

  // Make is not needed to read the Makefile: targets and their recipes, $(VAR) expanded.
  const makefile = readFileSync(join(REPO_ROOT, 'Makefile'), 'utf8')
  const vars = Object.fromEntries([...makefile.matchAll(/^(\w+)\s*\?=\s*(.+)$/gm)].map((m) => [m[1], m[2]!.trim()]))
  const recipe = (target: string) => new RegExp(`^${target}:.*\\n((?:\\t.*\\n)+)`, 'm').exec(makefile)?.[1]
    ?.replace(/\$\((\w+)\)/g, (_m, name: string) => vars[name] ?? '').trim()
  t.equal(recipe('docker-build'), 'docker build -f deploy/Dockerfile -t streaming-service:latest .', 'the seed\'s `make docker-build` tag')
  t.equal(recipe('run'), 'npm start', 'the README\'s commands')
  t.equal(recipe('test'), 'npm test')
})
