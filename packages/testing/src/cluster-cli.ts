// A cluster for tests written in other languages (the Python client's pytest):
//
//   node --import tsx packages/testing/src/cluster-cli.ts [--relays N] [--env KEY=VALUE ...]
//
// Starts `startCluster` (control plane + N relays, fresh database, own Redis
// key prefix), prints one JSON line describing it, then answers one JSON line
// per command line read from stdin:
//
//   {"id": 1, "op": "kill_relay", "relay": 0}   SIGKILL that relay (by PID) and wait for it to exit
//   {"id": 2, "op": "start_relay", "relay": 0}  start it again on the same port
//   {"id": 3, "op": "add_relay"}                one more relay on a free port
//
// Replies are {"id": …, "ok": true, "cluster": {…}} or {"id": …, "ok": false, "error": "…"}.
// When stdin closes (or on SIGTERM/SIGINT) every process is killed and the
// database dropped; then the script exits.
import { createInterface } from 'node:readline'
import { startCluster } from './cluster.js'
import type { ServiceProcess } from './process.js'

const teardowns: Array<() => unknown> = []
const t = { teardown (fn: () => unknown) { teardowns.push(fn) } }

let finishing: Promise<void> | undefined
async function finish (code: number): Promise<void> {
  finishing ??= (async () => {
    for (const fn of teardowns.reverse()) {
      try { await fn() } catch (err) { console.error('cluster-cli: teardown failed:', err) }
    }
    process.exit(code)
  })()
  await finishing
}

function parseArgs (argv: string[]): { relays: number, env: Record<string, string> } {
  let relays = 2
  const env: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = argv[i + 1]
    if (arg === '--relays' && value !== undefined) { relays = Number(value); i++ } else if (arg === '--env' && value?.includes('=') === true) {
      env[value.slice(0, value.indexOf('='))] = value.slice(value.indexOf('=') + 1)
      i++
    } else throw new Error(`usage: cluster-cli.ts [--relays N] [--env KEY=VALUE ...] (bad argument ${arg ?? ''})`)
  }
  if (!Number.isInteger(relays) || relays < 1) throw new Error('--relays must be a positive integer')
  return { relays, env }
}

const describe = (relay: ServiceProcess | undefined) => relay === undefined
  ? null
  : { url: relay.url, ws: relay.url.replace(/^http/, 'ws'), port: relay.port, pid: relay.child.pid, running: relay.child.exitCode === null && relay.child.signalCode === null }

try {
  process.on('SIGTERM', () => { void finish(0) })
  process.on('SIGINT', () => { void finish(0) })
  const options = parseArgs(process.argv.slice(2))
  const cluster = await startCluster(t, options)
  const relays: Array<ServiceProcess | undefined> = [...cluster.relays]
  const state = () => ({
    controlPlane: { url: cluster.controlPlane.url, port: cluster.controlPlane.port, pid: cluster.controlPlane.child.pid },
    relays: relays.map(describe),
    database: cluster.db.name,
    redisKeyPrefix: cluster.env.REDIS_KEY_PREFIX,
  })
  process.stdout.write(JSON.stringify(state()) + '\n')

  const relayAt = (index: unknown): ServiceProcess => {
    const relay = typeof index === 'number' ? relays[index] : undefined
    if (relay === undefined) throw new Error(`no relay ${String(index)}`)
    return relay
  }
  const commands = createInterface({ input: process.stdin })
  // One command at a time, in order.
  let queue = Promise.resolve()
  commands.on('line', (line) => {
    queue = queue.then(async () => {
      let id: unknown
      try {
        const command = JSON.parse(line) as { id?: unknown, op?: unknown, relay?: unknown }
        id = command.id
        if (command.op === 'kill_relay') {
          const relay = relayAt(command.relay)
          await relay.stop('SIGKILL')
        } else if (command.op === 'start_relay') {
          const relay = relayAt(command.relay)
          if (relay.child.exitCode === null && relay.child.signalCode === null) throw new Error(`relay ${String(command.relay)} is still running`)
          relays[command.relay as number] = await cluster.addRelay({ HTTP_PORT: String(relay.port) })
        } else if (command.op === 'add_relay') {
          relays.push(await cluster.addRelay())
        } else {
          throw new Error(`unknown op ${JSON.stringify(command.op)}`)
        }
        process.stdout.write(JSON.stringify({ id, ok: true, cluster: state() }) + '\n')
      } catch (err) {
        process.stdout.write(JSON.stringify({ id, ok: false, error: (err as Error).message }) + '\n')
      }
    })
  })
  commands.on('close', () => { void queue.then(async () => await finish(0)) })
} catch (err) {
  console.error('cluster-cli:', err)
  await finish(1)
}
