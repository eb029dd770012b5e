import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { createLogger, createPresence, type Logger, type Presence, type PresenceOptions } from '@streaming-service/core'
import type { Redis } from 'ioredis'
import {
  activeResourceCounts, adminClient, captureLogger, randomPrefix, sleep, TEST_REDIS_URL, throwawayRedis, waitFor,
} from './backplane-helper.js'

// What only the Redis presence has: several nodes sharing one view, expiry of
// a dead node's entries, recovery from Redis outages. On the shared Redis under
// a random prefix, or on throwaway redis-servers (spare ports, killed by PID).

const silent = createLogger('silent', 'presence-test')

type NodeOptions = Partial<PresenceOptions> & { redisUrl?: string }

function node (t: Test, keyPrefix: string, options: NodeOptions = {}): Presence {
  const presence = createPresence({ redisUrl: TEST_REDIS_URL, keyPrefix, nodeId: randomUUID(), logger: silent, ...options })
  t.teardown(async () => { await presence.close() })
  return presence
}

const sorted = (set: Set<string>): string[] => [...set].sort()

/** member → score of a presence key, read with an admin connection. */
async function scores (admin: Redis, key: string): Promise<Map<string, number>> {
  const members = await admin.zrange(key, 0, '-1')
  if (members.length === 0) return new Map()
  const values = await admin.zmscore(key, ...members)
  return new Map(members.map((member, i) => [member, Number(values[i])]))
}

/** A read on a fresh node waits for its first connection, whose rewrite makes its earlier entries visible to all. */
async function connected (presence: Presence): Promise<void> {
  await presence.publisherOnline(randomUUID())
}

/** Resolves with the read's value, or with its error code when it rejects. */
async function settle<T> (read: Promise<T>): Promise<T | { code: string }> {
  try {
    return await read
  } catch (err) {
    return { code: (err as { code: string }).code }
  }
}

const uncaught: unknown[] = []
process.on('uncaughtException', (err) => { uncaught.push(err) })
process.on('unhandledRejection', (err) => { uncaught.push(err) })

t.test('entries are members of one sorted set per session, scored with their expiry; the key expires with them', async (t) => {
  const prefix = randomPrefix('presence')
  const admin = await adminClient(t)
  const nodeId = randomUUID()
  const presence = node(t, prefix, { nodeId, ttlMs: 3000, refreshMs: 1000 })
  const sessionId = randomUUID()
  const key = `${prefix}presence:${sessionId}`
  const leaveOperator = presence.enter(sessionId, 'operator', 'team:alice')
  const leavePublisher = presence.enter(sessionId, 'publisher', 'pub-1')
  t.equal(await presence.publisherOnline(sessionId), true)
  const now = Date.now()
  const byName = await scores(admin, key)
  t.equal(byName.size, 2, 'two members')
  const operator = [...byName.keys()].find((m) => m.startsWith('operator:'))!
  const publisher = [...byName.keys()].find((m) => m.startsWith('publisher:'))!
  t.match(operator, new RegExp(`^operator:${nodeId}:[0-9a-f]{8}\\.[0-9a-z]+:team:alice$`), '<role>:<nodeId>:<connectionId>:<userId>, user id last')
  t.match(publisher, new RegExp(`^publisher:${nodeId}:[0-9a-f]{8}\\.[0-9a-z]+:pub-1$`))
  for (const [member, score] of byName) t.ok(score > now && score <= now + 3000, `${member.split(':')[0]} scored with its expiry (now + ${score - now} ms)`)
  const pttl = await admin.pttl(key)
  t.ok(pttl > 3000 && pttl <= 6000, `the key expires after 2 × ttl unless refreshed (PTTL ${pttl} ms)`)
  leaveOperator()
  leavePublisher()
  await waitFor(async () => (await admin.exists(key)) === 0, 2000, 'the key gone with its last member')
  t.pass('leaving removes the member at once (ZREM) and Redis drops the empty key')
})

t.test('two nodes of one deployment see each other\'s connections', async (t) => {
  const prefix = randomPrefix('presence')
  const a = node(t, prefix)
  const b = node(t, prefix)
  const sessionId = randomUUID()
  const publisherOnA = a.enter(sessionId, 'publisher', 'pub-1')
  const aliceOnA = a.enter(sessionId, 'operator', 'alice')
  const aliceOnB = b.enter(sessionId, 'operator', 'alice')
  const bobOnB = b.enter(sessionId, 'operator', 'bob')
  await Promise.all([connected(a), connected(b)])
  for (const [name, presence] of [['A', a], ['B', b]] as const) {
    t.equal(await presence.publisherOnline(sessionId), true, `${name} sees the publisher on A`)
    t.same(sorted(await presence.onlineOperators(sessionId)), ['alice', 'bob'], `${name} sees the operators of both nodes`)
  }
  aliceOnA()
  t.same(sorted(await a.onlineOperators(sessionId)), ['alice', 'bob'], 'alice left A but is still connected on B')
  aliceOnB()
  t.same(sorted(await a.onlineOperators(sessionId)), ['bob'], 'alice gone from A\'s view once she left B')
  publisherOnA()
  t.equal(await b.publisherOnline(sessionId), false, 'the publisher gone from B\'s view once it left A')
  bobOnB()
  t.same(sorted(await a.onlineOperators(sessionId)), [])
})

t.test('a live node keeps its entries past the ttl by refreshing them', async (t) => {
  const prefix = randomPrefix('presence')
  const admin = await adminClient(t)
  const writer = node(t, prefix, { ttlMs: 600, refreshMs: 200 })
  const reader = node(t, prefix, { ttlMs: 600, refreshMs: 200 })
  const sessionId = randomUUID()
  writer.enter(sessionId, 'publisher', 'pub-1')
  writer.enter(sessionId, 'operator', 'op-1')
  const started = performance.now()
  await connected(writer)
  const firstScore = Math.min(...(await scores(admin, `${prefix}presence:${sessionId}`)).values())
  let reads = 0
  while (performance.now() - started < 2000) {
    const [online, operators] = await Promise.all([reader.publisherOnline(sessionId), reader.onlineOperators(sessionId)])
    if (!online || !operators.has('op-1')) t.fail(`offline ${Math.round(performance.now() - started)} ms after entering`)
    reads++
    await sleep(20)
  }
  t.ok(reads > 50, `online in all of ${reads} reads over 2000 ms (more than 3 × ttl)`)
  const lastScore = Math.min(...(await scores(admin, `${prefix}presence:${sessionId}`)).values())
  t.ok(lastScore - firstScore >= 1500, `the expiry moved forward by ${lastScore - firstScore} ms`)
})

const CHILD = `
const [coreUrl, redisUrl, keyPrefix, nodeId, sessionId, otherSessionId] = process.argv.slice(1)
const { createLogger, createPresence } = await import(coreUrl)
const presence = createPresence({ redisUrl, keyPrefix, nodeId, logger: createLogger('warn', 'presence-child'), ttlMs: 600, refreshMs: 200 })
presence.enter(sessionId, 'publisher', 'pub-child')
presence.enter(sessionId, 'operator', 'op-child')
presence.enter(otherSessionId, 'operator', 'op-child')
while (!(await presence.publisherOnline(sessionId))) await new Promise((resolve) => setTimeout(resolve, 10))
process.stdout.write('entered\\n')
`

t.test('a node SIGKILLed: its entries stay until ttlMs after its last refresh, then vanish everywhere', async (t) => {
  const prefix = randomPrefix('presence')
  const admin = await adminClient(t)
  const survivor = node(t, prefix, { ttlMs: 600, refreshMs: 200 })
  const sessionId = randomUUID()
  const onlyChildSession = randomUUID()
  const key = `${prefix}presence:${sessionId}`
  const childNodeId = randomUUID()
  // The child is another process using the built package, as a relay would.
  const coreUrl = import.meta.resolve('@streaming-service/core')
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD, coreUrl, TEST_REDIS_URL, prefix, childNodeId, sessionId, onlyChildSession], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
  t.teardown(() => { child.kill('SIGKILL') })
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => { if (line === 'entered') resolve() })
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)))
  })
  survivor.enter(sessionId, 'operator', 'op-survivor')
  t.equal(await survivor.publisherOnline(sessionId), true, 'the child\'s publisher is seen by the other node')
  t.same(sorted(await survivor.onlineOperators(sessionId)), ['op-child', 'op-survivor'])

  // Let the child refresh a few times, so the expiry measured is a refreshed one.
  await sleep(500)
  child.kill('SIGKILL')
  t.equal(await exited, 'SIGKILL', 'the child node died by SIGKILL')
  const killedAt = Date.now()
  // Its entries' score is the end of their life: when it last wrote them plus ttl.
  const childScore = [...(await scores(admin, key))].find(([member]) => member.startsWith('publisher:'))![1]
  const leftAtKill = childScore - killedAt
  t.ok(leftAtKill > 0 && leftAtKill <= 600, `at the kill its entries had ${leftAtKill} ms left (ttl 600, last refreshed ${600 - leftAtKill} ms before; refresh every 200)`)

  // Both of its entries, polled until gone: when was each last seen, and first missed.
  const seen = { publisher: { last: 0, gone: 0 }, operator: { last: 0, gone: 0 } }
  while (seen.publisher.gone === 0 || seen.operator.gone === 0) {
    if (Date.now() - killedAt > 5000) throw new Error('the dead node\'s entries never expired')
    const readAt = Date.now()
    const [online, operators] = await Promise.all([survivor.publisherOnline(sessionId), survivor.onlineOperators(sessionId)])
    for (const [which, present] of [['publisher', online], ['operator', operators.has('op-child')]] as const) {
      if (present) seen[which].last = readAt
      else if (seen[which].gone === 0) seen[which].gone = Date.now()
    }
    await sleep(5)
  }
  for (const which of ['publisher', 'operator'] as const) {
    const { last, gone } = seen[which]
    t.ok(last >= childScore - 100, `its ${which} still online until its expiry (last seen ${last - killedAt} ms after the kill; expiry at ${childScore - killedAt} ms)`)
    t.ok(gone <= childScore + 100 && gone - killedAt <= 600 + 150, `its ${which} gone from the other node's reads ${gone - killedAt} ms after the kill (expiry at ${childScore - killedAt} ms; ttl 600)`)
  }
  const lastSeenAt = Math.max(seen.publisher.last, seen.operator.last)
  const goneAt = Math.max(seen.publisher.gone, seen.operator.gone)
  t.same(sorted(await survivor.onlineOperators(sessionId)), ['op-survivor'], 'the live node\'s own entry is untouched')

  // Leftovers: pruned by the live node's refresh once a ttl past their expiry;
  // a session only the dead node had vanishes with its key (PEXPIRE 2 × ttl).
  await waitFor(async () => (await admin.zcard(key)) === 1, 3000, 'the dead node\'s members pruned')
  const prunedMs = Date.now() - killedAt
  await waitFor(async () => (await admin.exists(`${prefix}presence:${onlyChildSession}`)) === 0, 3000, 'the abandoned session key gone')
  const abandonedGoneMs = Date.now() - killedAt
  t.pass(`dead members pruned ${prunedMs} ms and the abandoned key gone ${abandonedGoneMs} ms after the kill`)
  t.comment(`measured: SIGKILLed node's entries had ${leftAtKill} ms left, were last seen ${lastSeenAt - killedAt} ms and gone ${goneAt - killedAt} ms after the kill (ttl 600 ms, refresh 200 ms)`)
})

t.test('Redis killed -9 and restarted empty: reads fail with SS_BACKPLANE_UNAVAILABLE, enter/leave never throw, the node rewrites its entries', async (t) => {
  const redis = await throwawayRedis(t)
  const { logger, lines } = captureLogger()
  const prefix = randomPrefix('presence')
  const a = node(t, prefix, { redisUrl: redis.url, logger, ttlMs: 3000, refreshMs: 1000 })
  const b = node(t, prefix, { redisUrl: redis.url, ttlMs: 3000, refreshMs: 1000 })
  const sessionId = randomUUID()
  a.enter(sessionId, 'publisher', 'pub-1')
  const leaveAlice = a.enter(sessionId, 'operator', 'alice')
  a.enter(sessionId, 'operator', 'bob')
  await connected(a)
  t.same(sorted(await b.onlineOperators(sessionId)), ['alice', 'bob'])

  await redis.kill()
  const killedAt = performance.now()
  await waitFor(async () => (await settle(a.publisherOnline(sessionId)) as { code?: string }).code === 'SS_BACKPLANE_UNAVAILABLE', 3000, 'reads failing')
  const failingAfterMs = performance.now() - killedAt
  const readStarted = performance.now()
  await t.rejects(a.onlineOperators(sessionId), { code: 'SS_BACKPLANE_UNAVAILABLE', statusCode: 503 }, 'operators read rejects: the caller answers 503')
  await t.rejects(b.publisherOnline(sessionId), { code: 'SS_BACKPLANE_UNAVAILABLE' }, 'on every node')
  const failMs = performance.now() - readStarted
  t.ok(failMs < 100, `reads fail fast during the outage (${Math.round(failMs)} ms for two)`)
  t.doesNotThrow(() => {
    leaveAlice()
    a.enter(sessionId, 'operator', 'carol')
    a.enter(sessionId, 'operator', 'dave')()
  }, 'enter() and leave() during the outage do not throw')
  await sleep(300)

  await redis.start()
  const backAt = performance.now()
  // A throwaway server comes back empty: only A's rewrite can bring the entries back.
  await waitFor(async () => {
    const operators = await b.onlineOperators(sessionId)
    return await b.publisherOnline(sessionId) && sorted(operators).join() === 'bob,carol'
  }, 5000, 'A\'s entries as they are now, seen from B')
  const restoredMs = performance.now() - backAt
  t.ok(restoredMs < 1000, `entries restored ${Math.round(restoredMs)} ms after Redis answered again (< refresh period 1000 ms)`)
  t.same(sorted(await a.onlineOperators(sessionId)), ['bob', 'carol'], 'left during the outage: gone; entered: there; entered and left: never shown')
  t.equal(uncaught.length, 0, 'no uncaught exception or unhandled rejection')
  t.ok(lines.some((l) => l.msg === 'presence connection lost'), 'the loss is logged')
  t.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('presence connection restored') && typeof l.downMs === 'number' && l.connections === 3), 'the recovery is logged with its downtime and what is rewritten')
  t.ok(lines.filter((l) => l.msg === 'presence connection error' && l.level === 40).length <= 2, 'one warning per outage, not one per reconnect attempt')
  t.comment(`measured: reads failing ${Math.round(failingAfterMs)} ms after the kill; entries restored ${Math.round(restoredMs)} ms after Redis was back`)
})

t.test('a write Redis refuses is logged with a running count, never thrown', async (t) => {
  const prefix = randomPrefix('presence')
  const admin = await adminClient(t)
  const { logger, lines } = captureLogger()
  const presence = node(t, prefix, { logger })
  await connected(presence)
  const sessionId = randomUUID()
  // Something else owns the key with another type: every ZADD to it fails.
  await admin.set(`${prefix}presence:${sessionId}`, 'not a sorted set', 'PX', 10_000)
  t.doesNotThrow(() => { presence.enter(sessionId, 'operator', 'op-1')(); presence.enter(sessionId, 'operator', 'op-2') })
  const line = await waitFor(() => lines.find((l) => l.msg === 'presence write failed'), 3000, 'the failure logged')
  t.match(line, { level: 40, op: /^(enter|leave)$/, failedWrites: Number, err: { message: /WRONGTYPE/ } }, 'logged as a warning with the error and the count so far')
  await t.rejects(presence.onlineOperators(sessionId), { code: 'SS_BACKPLANE_UNAVAILABLE' }, 'a read that fails rejects with the 503 code')
  t.equal(uncaught.length, 0, 'no uncaught exception or unhandled rejection')
})

/** A TCP proxy to a Redis that can cut every connection and refuse new ones, while Redis keeps its data. */
async function tcpProxy (t: Test, targetPort: number): Promise<{ url: string, cut: () => Promise<void>, restore: () => Promise<void> }> {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  const listen = async (): Promise<void> => {
    const proxy = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1')
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('error', () => {})
        socket.on('close', () => { sockets.delete(socket); client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve, reject) => {
      proxy.once('error', reject)
      proxy.listen(port, '127.0.0.1', () => { resolve() })
    })
    port = (proxy.address() as { port: number }).port
    server = proxy
  }
  const cut = async (): Promise<void> => {
    const proxy = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    if (proxy !== undefined) await new Promise<void>((resolve) => proxy.close(() => { resolve() }))
  }
  await listen()
  t.teardown(cut)
  return { url: `redis://127.0.0.1:${port}`, cut, restore: listen }
}

t.test('a network cut while Redis keeps its data: removals made during it are applied on reconnect, not left to expire', async (t) => {
  const proxy = await tcpProxy(t, Number(new URL(TEST_REDIS_URL).port || 6379))
  const prefix = randomPrefix('presence')
  // A ttl long enough that expiry cannot explain anything below.
  const cutOff = node(t, prefix, { redisUrl: proxy.url, ttlMs: 30_000, refreshMs: 10_000 })
  const observer = node(t, prefix, { ttlMs: 30_000, refreshMs: 10_000 })
  const sessionId = randomUUID()
  const leavePublisher = cutOff.enter(sessionId, 'publisher', 'pub-1')
  const leaveAlice = cutOff.enter(sessionId, 'operator', 'alice')
  cutOff.enter(sessionId, 'operator', 'bob')
  await connected(cutOff)
  t.same(sorted(await observer.onlineOperators(sessionId)), ['alice', 'bob'])

  await proxy.cut()
  await waitFor(async () => (await settle(cutOff.publisherOnline(sessionId)) as { code?: string }).code === 'SS_BACKPLANE_UNAVAILABLE', 3000, 'the cut-off node failing to read')
  leavePublisher()
  leaveAlice()
  cutOff.enter(sessionId, 'operator', 'carol')
  await sleep(200)
  t.equal(await observer.publisherOnline(sessionId), true, 'during the cut Redis still holds what the cut-off node could not remove')
  t.same(sorted(await observer.onlineOperators(sessionId)), ['alice', 'bob'])

  await proxy.restore()
  const backAt = performance.now()
  await waitFor(async () => !(await observer.publisherOnline(sessionId)) && sorted(await observer.onlineOperators(sessionId)).join() === 'bob,carol', 5000, 'the changes made during the cut')
  const appliedMs = performance.now() - backAt
  t.ok(appliedMs < 1000, `removals and entries of the cut applied ${Math.round(appliedMs)} ms after the network came back (ttl 30 s)`)
  t.comment(`measured: changes made during a network cut applied ${Math.round(appliedMs)} ms after it ended`)
})

t.test('close() takes the node\'s entries down and leaves no socket or timer behind', async (t) => {
  const count = activeResourceCounts
  // Earlier tests' connections may still be shutting down: start from a settled count.
  await waitFor(() => count().SimpleShutdownWrap === undefined, 3000, 'earlier sockets closed')
  await sleep(200)
  const before = count()
  const prefix = randomPrefix('presence')
  const logger: Logger = silent
  const closing = createPresence({ redisUrl: TEST_REDIS_URL, keyPrefix: prefix, nodeId: randomUUID(), logger, ttlMs: 30_000 })
  const memory = createPresence({ keyPrefix: prefix, nodeId: randomUUID(), logger })
  const sessionId = randomUUID()
  closing.enter(sessionId, 'publisher', 'pub-1')
  closing.enter(sessionId, 'operator', 'op-1')
  memory.enter(sessionId, 'operator', 'op-1')
  t.equal(await closing.publisherOnline(sessionId), true)
  t.ok((count().TCPSocketWrap ?? 0) >= (before.TCPSocketWrap ?? 0) + 1, 'the Redis presence holds its connection')
  t.ok((count().Timeout ?? 0) >= (before.Timeout ?? 0) + 1, 'and its refresh timer')
  await Promise.all([closing.close(), memory.close()])
  const observer = node(t, prefix)
  t.equal(await observer.publisherOnline(sessionId), false, 'a node closed cleanly takes its entries with it (no wait for the ttl)')
  t.same(sorted(await observer.onlineOperators(sessionId)), [])
  await observer.close()
  await waitFor(() => {
    const after = count()
    return (after.TCPSocketWrap ?? 0) === (before.TCPSocketWrap ?? 0) && (after.Timeout ?? 0) <= (before.Timeout ?? 0)
  }, 3000, 'sockets and timers released')
  t.pass('sockets and timers are back to where they were')
})
