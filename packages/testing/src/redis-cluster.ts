import { execFile, execFileSync } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { waitFor } from './faults.js'
import { startRedisServer, type RedisServer } from './redis-server.js'

const run = promisify(execFile)

interface Teardown { teardown (fn: () => unknown): void }

/** One line of CLUSTER NODES. */
export interface ClusterNodeInfo {
  id: string
  port: number
  role: 'master' | 'replica'
  /** The master's id, for a replica. */
  masterId: string | undefined
  failing: boolean
  /** Slot ranges, inclusive (masters). */
  slots: Array<[number, number]>
}

export interface RedisClusterOptions {
  masters?: number
  replicasPerMaster?: number
  /** cluster-node-timeout: how long a master must be unreachable before its replica takes over (default 1000 ms). */
  nodeTimeoutMs?: number
}

/**
 * A Redis Cluster of the test's own: `masters` × (1 + `replicasPerMaster`)
 * redis-server processes on spare loopback ports (each port + 10000 is its
 * cluster bus), killed by PID and their directories removed at teardown.
 * `cluster-require-full-coverage no`: a shard that is down does not stop the others.
 */
export interface RedisCluster {
  servers: RedisServer[]
  /** REDIS_CLUSTER_NODES for the service: every node as host:port. */
  seeds: string
  seedList: Array<{ host: string, port: number }>
  /** redis-cli against one node; the reply as text. */
  cli (port: number, ...args: string[]): Promise<string>
  /** CLUSTER NODES as seen by a live node. */
  nodes (): Promise<ClusterNodeInfo[]>
  /** The master that owns `slot` now, as seen by a live node. */
  masterOf (slot: number): Promise<ClusterNodeInfo>
  keySlot (key: string): Promise<number>
  /** The process behind a port. */
  server (port: number): RedisServer
  /** Resolves once every live node reports cluster_state:ok and agrees on the slot owners. */
  waitHealthy (timeoutMs?: number): Promise<void>
  /** Moves one slot to another master (SETSLOT IMPORTING/MIGRATING, MIGRATE of its keys, SETSLOT NODE everywhere). */
  moveSlot (slot: number, toPort: number): Promise<void>
}

/** A port whose cluster bus port (+10000) was free too, a moment ago. */
async function clusterPort (taken: Set<number>): Promise<number> {
  const bindable = async (port: number): Promise<boolean> => await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    if (!taken.has(port) && await bindable(port) && await bindable(port + 10_000)) return port
  }
}

function requireRedisTools (): void {
  for (const tool of ['redis-server', 'redis-cli']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' })
    } catch {
      throw new Error(`${tool} is not on PATH: Redis Cluster tests need Redis >= 7 (Debian: apt-get install redis-server redis-tools)`)
    }
  }
}

function parseNodes (text: string): ClusterNodeInfo[] {
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => {
    const [id, address, flags, master, , , , , ...slots] = line.trim().split(' ')
    const port = Number(/:(\d+)@/.exec(address!)?.[1])
    return {
      id: id!,
      port,
      role: flags!.includes('master') ? 'master' : 'replica',
      masterId: master === '-' ? undefined : master,
      failing: /fail/.test(flags!) || flags!.includes('noaddr'),
      slots: slots.filter((s) => /^\d+(-\d+)?$/.test(s)).map((s) => {
        const [from, to] = s.split('-').map(Number)
        return [from!, to ?? from!] as [number, number]
      }),
    }
  })
}

export async function startRedisCluster (t: Teardown, options: RedisClusterOptions = {}): Promise<RedisCluster> {
  requireRedisTools()
  const masters = options.masters ?? 3
  const count = masters * (1 + (options.replicasPerMaster ?? 1))
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await clusterPort(ports))
  const servers = await Promise.all([...ports].map(async (port) => await startRedisServer(t, {
    port,
    args: (dir) => [
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
      '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1000), '--cluster-require-full-coverage', 'no',
    ],
  })))
  const cli = async (port: number, ...args: string[]): Promise<string> =>
    (await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 })).stdout.trim()
  const live = (): RedisServer[] => servers.filter((server) => server.running)
  const nodes = async (): Promise<ClusterNodeInfo[]> => {
    let lastError: unknown
    for (const server of live()) {
      try { return parseNodes(await cli(server.port, 'CLUSTER', 'NODES')) } catch (err) { lastError = err }
    }
    throw new Error('no live cluster node answers CLUSTER NODES', { cause: lastError })
  }
  const masterOf = async (slot: number): Promise<ClusterNodeInfo> => {
    const owner = (await nodes()).find((node) => node.role === 'master' && !node.failing && node.slots.some(([from, to]) => slot >= from && slot <= to))
    if (owner === undefined) throw new Error(`no master owns slot ${slot}`)
    return owner
  }
  const waitHealthy = async (timeoutMs = 20_000): Promise<void> => {
    await waitFor('cluster_state:ok on every live node, one view of the slots', async () => {
      const views = await Promise.all(live().map(async (server) => {
        if (!(await cli(server.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return undefined
        return JSON.stringify(parseNodes(await cli(server.port, 'CLUSTER', 'NODES'))
          .filter((node) => node.role === 'master' && node.slots.length > 0 && !node.failing)
          .map((node) => `${node.port}:${JSON.stringify(node.slots)}`).sort())
      }))
      return views.every((view) => view !== undefined && view === views[0])
    }, timeoutMs, 50)
  }

  const seedList = servers.map((server) => ({ host: '127.0.0.1', port: server.port }))
  await run('redis-cli', ['--cluster', 'create', ...seedList.map(({ host, port }) => `${host}:${port}`),
    '--cluster-replicas', String(options.replicasPerMaster ?? 1), '--cluster-yes'], { timeout: 30_000 })
  await waitHealthy()
  await waitFor('every replica attached and in sync', async () => {
    const all = await nodes()
    const replicas = all.filter((node) => node.role === 'replica')
    if (replicas.length !== count - masters) return false
    const links = await Promise.all(replicas.map(async (node) => await cli(node.port, 'INFO', 'replication')))
    return links.every((info) => info.includes('master_link_status:up'))
  }, 20_000, 50)

  return {
    servers,
    seeds: seedList.map(({ host, port }) => `${host}:${port}`).join(','),
    seedList,
    cli,
    nodes,
    masterOf,
    keySlot: async (key) => Number(await cli(servers[0]!.port, 'CLUSTER', 'KEYSLOT', key)),
    server: (port) => {
      const server = servers.find((s) => s.port === port)
      if (server === undefined) throw new Error(`no cluster node on port ${port}`)
      return server
    },
    waitHealthy,
    async moveSlot (slot, toPort) {
      const all = await nodes()
      const from = await masterOf(slot)
      const to = all.find((node) => node.port === toPort && node.role === 'master')
      if (to === undefined) throw new Error(`port ${toPort} is not a master`)
      if (from.id === to.id) return
      await cli(to.port, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', from.id)
      await cli(from.port, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', to.id)
      for (;;) {
        const keys = (await cli(from.port, 'CLUSTER', 'GETKEYSINSLOT', String(slot), '100')).split('\n').filter((k) => k !== '')
        if (keys.length === 0) break
        await cli(from.port, 'MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys)
      }
      for (const node of [to, from, ...all.filter((n) => n.id !== to.id && n.id !== from.id && !n.failing)]) {
        await cli(node.port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id)
      }
    },
  }
}
