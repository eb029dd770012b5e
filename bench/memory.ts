/**
 * Memory and start-up, measured apart from the load: a relay's RSS when idle,
 * what each idle operator connection adds to it (against the same for the
 * single-process ws broadcast), and how long an `api` on a fresh embedded
 * database takes from spawn to /ready.
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import { streamUrl, type CreatedSession } from '@streaming-service/protocol'
import { openIdleSockets, startService, tempDir, TEST_REDIS_URL, type ServiceProcess } from '@streaming-service/testing'
import { rssBytes, startCeiling, Teardowns } from './harness.js'

const MB = 1024 * 1024

export interface MemoryResult {
  relayIdleMB: number
  relayPerConnectionKB: number
  ceilingIdleMB: number
  ceilingPerConnectionKB: number
  connections: number
  apiFirstStartMs: number
}

/** RSS once it stops moving much: the median of a few samples a moment apart. */
async function settledRss (pid: number): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < 5; i++) {
    await delay(200)
    samples.push(rssBytes(pid))
  }
  return samples.sort((a, b) => a - b)[2]!
}

async function perConnection (pid: number, urls: string[]): Promise<{ idle: number, perConnection: number }> {
  const idle = await settledRss(pid)
  const sockets = await openIdleSockets(urls)
  const loaded = await settledRss(pid)
  for (const socket of sockets) socket.terminate()
  return { idle, perConnection: (loaded - idle) / urls.length }
}

export async function measureMemory (options: { dbEnv: Record<string, string>, connections: number }): Promise<MemoryResult> {
  const scope = new Teardowns()
  try {
    const env = { ...options.dbEnv, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `ssbench:${randomUUID().slice(0, 8)}:`, SESSION_MAX_OPERATORS: '100000' }
    const [controlPlane, relay] = await Promise.all([startService(scope, ['control-plane'], env), startService(scope, ['relay'], env)]) as [ServiceProcess, ServiceProcess]
    const res = await fetch(`${controlPlane.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: randomUUID() }) })
    const session = await res.json() as CreatedSession
    const base = `ws://127.0.0.1:${relay.port}`
    const cluster = await perConnection(relay.child.pid!, Array.from({ length: options.connections }, (_, i) => streamUrl({ base, sessionId: session.session_id, userId: `idle-${i}` })))

    const ceiling = await startCeiling(scope)
    const room = await ceiling.openSession(0, Array.from({ length: options.connections }, () => 0))
    const ceilingPublisher = await openIdleSockets([room.publisherUrl])
    const baseline = await perConnection(ceiling.pids[0]!, room.operatorUrls)
    for (const socket of ceilingPublisher) socket.terminate()

    const started = performance.now()
    const api = await startService(scope, ['api'], { DATA_DIR: tempDir('ss-bench-start-') })
    for (;;) {
      if ((await fetch(`${api.url}/ready`)).status === 200) break
      await delay(20)
    }
    const apiFirstStartMs = performance.now() - started
    return {
      relayIdleMB: cluster.idle / MB,
      relayPerConnectionKB: cluster.perConnection / 1024,
      ceilingIdleMB: baseline.idle / MB,
      ceilingPerConnectionKB: baseline.perConnection / 1024,
      connections: options.connections,
      apiFirstStartMs,
    }
  } finally {
    await scope.run()
  }
}
