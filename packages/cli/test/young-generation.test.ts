import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { streamUrl } from '@streaming-service/protocol'
import { createTestDatabase, openIdleSockets, startService, TEST_REDIS_URL, type ServiceProcess } from '@streaming-service/testing'

// bin.ts keeps V8's young generation from growing unless NODE_OPTIONS or the
// command line size it. Idle operator connections are a load that grows it:
// what each handshake leaves alive survives scavenges, and V8 grows the young
// generation to its 32 MB maximum. If a Node upgrade stops honouring the
// growth factor set at run time, the first test fails.

const MB = 1024 * 1024
const CONNECTIONS = 600

async function newSpaceBytes (service: ServiceProcess): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text()
  const match = /^nodejs_heap_space_size_total_bytes\{[^}]*space="new"[^}]*\} (\d+)$/m.exec(text)
  if (match === null) throw new Error('/metrics has no nodejs_heap_space_size_total_bytes{space="new"}')
  return Number(match[1])
}

async function newSpaceUnderIdleOperators (t: Test, nodeArgs: string[]): Promise<{ before: number, after: number }> {
  const db = await createTestDatabase(t, 'young')
  const env = { ...db.env, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `sstest:${randomUUID()}:`, SESSION_MAX_OPERATORS: '100000' }
  const controlPlane = await startService(t, ['control-plane'], env)
  const relay = await startService(t, ['relay'], env, { nodeArgs })
  const created = await fetch(`${controlPlane.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: randomUUID() }) })
  const { session_id: sessionId } = await created.json() as { session_id: string }
  const before = await newSpaceBytes(relay)
  const base = `ws://127.0.0.1:${relay.port}`
  const sockets = await openIdleSockets(Array.from({ length: CONNECTIONS }, (_, i) => streamUrl({ base, sessionId, userId: `idle-${i}` })), 50)
  const after = await newSpaceBytes(relay)
  for (const socket of sockets) socket.terminate()
  return { before, after }
}

t.test('the young generation does not grow while operators connect', async (t) => {
  const { before, after } = await newSpaceUnderIdleOperators(t, [])
  t.comment(`new space ${before / MB} MB after start, ${after / MB} MB with ${CONNECTIONS} idle operators`)
  t.ok(after <= 4 * MB, `new space ${after / MB} MB ≤ 4 MB`)
  t.ok(after <= before, 'not grown since start')
})

t.test('semi-space sizes given to node rule instead', async (t) => {
  const { after } = await newSpaceUnderIdleOperators(t, ['--semi-space-growth-factor=2'])
  t.comment(`new space ${after / MB} MB with ${CONNECTIONS} idle operators`)
  t.ok(after >= 16 * MB, `new space ${after / MB} MB ≥ 16 MB: the same load grows it`)
})
