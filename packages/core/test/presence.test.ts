import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { createLogger, createPresence, type Presence, type PresenceOptions } from '@streaming-service/core'
import { randomPrefix, TEST_REDIS_URL } from './backplane-helper.js'

// One presence contract (core/src/presence/types.ts), every implementation.
// Redis-only behaviour (several nodes, expiry, outages) is in presence-redis.test.ts.

const silent = createLogger('silent', 'presence-test')

/** Builds a Presence of one implementation and closes it at the test's teardown. */
type PresenceFactory = (t: Test, options?: Partial<PresenceOptions>) => Presence

function factory (redisUrl?: string): PresenceFactory {
  return (t, options = {}) => {
    const presence = createPresence({
      keyPrefix: randomPrefix('presence'),
      nodeId: randomUUID(),
      logger: silent,
      ...(redisUrl === undefined ? {} : { redisUrl }),
      ...options,
    })
    t.teardown(async () => { await presence.close() })
    return presence
  }
}

const sorted = (set: Set<string>): string[] => [...set].sort()

function presenceContract (t: Test, name: string, make: PresenceFactory): void {
  t.test(`${name}: a publisher is online from enter() until leave(); leave() is idempotent`, async (t) => {
    const presence = make(t)
    const sessionId = randomUUID()
    t.equal(await presence.publisherOnline(sessionId), false, 'nobody there at first')
    const leave = presence.enter(sessionId, 'publisher', 'pub-1')
    t.equal(typeof leave, 'function')
    t.equal(await presence.publisherOnline(sessionId), true, 'online once entered')
    t.same(sorted(await presence.onlineOperators(sessionId)), [], 'a publisher is not an operator')
    leave()
    t.equal(await presence.publisherOnline(sessionId), false, 'offline once left')
    leave()
    t.equal(await presence.publisherOnline(sessionId), false, 'a second leave() changes nothing')
  })

  t.test(`${name}: a user with several connections stays online until the last one leaves`, async (t) => {
    const presence = make(t)
    const sessionId = randomUUID()
    const first = presence.enter(sessionId, 'operator', 'op-1')
    const second = presence.enter(sessionId, 'operator', 'op-1')
    const other = presence.enter(sessionId, 'operator', 'team:alice:2')
    t.same(sorted(await presence.onlineOperators(sessionId)), ['op-1', 'team:alice:2'], 'each user once, user ids with ":" intact')
    t.equal(await presence.publisherOnline(sessionId), false, 'operators are not publishers')
    first()
    first()
    t.same(sorted(await presence.onlineOperators(sessionId)), ['op-1', 'team:alice:2'], 'one of two connections left (twice): still online')
    second()
    t.same(sorted(await presence.onlineOperators(sessionId)), ['team:alice:2'], 'the last connection left: offline')
    other()
    t.same(sorted(await presence.onlineOperators(sessionId)), [], 'nobody left')

    // A publisher taking over overlaps with the connection it replaces.
    const oldPublisher = presence.enter(sessionId, 'publisher', 'pub-1')
    const newPublisher = presence.enter(sessionId, 'publisher', 'pub-1')
    oldPublisher()
    t.equal(await presence.publisherOnline(sessionId), true, 'the newer publisher connection keeps it online')
    newPublisher()
    t.equal(await presence.publisherOnline(sessionId), false, 'offline when both left')
  })

  t.test(`${name}: one user may be publisher and operator; roles are counted apart`, async (t) => {
    const presence = make(t)
    const sessionId = randomUUID()
    const asPublisher = presence.enter(sessionId, 'publisher', 'same-user')
    const asOperator = presence.enter(sessionId, 'operator', 'same-user')
    asPublisher()
    t.equal(await presence.publisherOnline(sessionId), false, 'the publisher left')
    t.same(sorted(await presence.onlineOperators(sessionId)), ['same-user'], 'the operator connection is still there')
    asOperator()
    t.same(sorted(await presence.onlineOperators(sessionId)), [])
  })

  t.test(`${name}: sessions are isolated`, async (t) => {
    const presence = make(t)
    const a = randomUUID()
    const b = randomUUID()
    presence.enter(a, 'publisher', 'pub-a')
    presence.enter(a, 'operator', 'op-a')
    const leaveB = presence.enter(b, 'operator', 'op-b')
    t.equal(await presence.publisherOnline(a), true)
    t.equal(await presence.publisherOnline(b), false, 'a publisher of A is not one of B')
    t.same(sorted(await presence.onlineOperators(a)), ['op-a'])
    t.same(sorted(await presence.onlineOperators(b)), ['op-b'])
    leaveB()
    t.same(sorted(await presence.onlineOperators(a)), ['op-a'], 'leaving B does not touch A')
  })

  t.test(`${name}: deployments with different key prefixes do not see each other`, async (t) => {
    const one = make(t, { keyPrefix: randomPrefix('presence') })
    const two = make(t, { keyPrefix: randomPrefix('presence') })
    const sessionId = randomUUID()
    one.enter(sessionId, 'publisher', 'pub-1')
    one.enter(sessionId, 'operator', 'op-1')
    t.equal(await one.publisherOnline(sessionId), true)
    t.equal(await two.publisherOnline(sessionId), false, 'same session id, other deployment: offline')
    t.same(sorted(await two.onlineOperators(sessionId)), [])
  })

  t.test(`${name}: after close(), enter() and leave() are no-ops and reads reject with SS_BACKPLANE_UNAVAILABLE`, async (t) => {
    const presence = make(t)
    const sessionId = randomUUID()
    const leave = presence.enter(sessionId, 'operator', 'op-1')
    await presence.close()
    await presence.close()
    t.doesNotThrow(() => { leave() }, 'leave() after close()')
    t.doesNotThrow(() => { presence.enter(sessionId, 'publisher', 'pub-1')() }, 'enter() after close()')
    await t.rejects(presence.publisherOnline(sessionId), { code: 'SS_BACKPLANE_UNAVAILABLE', statusCode: 503 })
    await t.rejects(presence.onlineOperators(sessionId), { code: 'SS_BACKPLANE_UNAVAILABLE', statusCode: 503 })
  })
}

presenceContract(t, 'memory', factory())
presenceContract(t, 'redis', factory(TEST_REDIS_URL))

t.test('createPresence is the one place choosing the store, and validates its options', async (t) => {
  const base = { keyPrefix: randomPrefix('presence'), nodeId: randomUUID(), logger: silent }
  const memory = createPresence(base)
  const empty = createPresence({ ...base, redisUrl: '' })
  const redis = createPresence({ ...base, redisUrl: TEST_REDIS_URL })
  t.teardown(async () => { await Promise.all([memory.close(), empty.close(), redis.close()]) })
  t.equal(memory.kind, 'memory', 'no REDIS_URL: in-process')
  t.equal(empty.kind, 'memory', 'an empty REDIS_URL is no REDIS_URL')
  t.equal(redis.kind, 'redis', 'REDIS_URL: Redis')
  t.throws(() => createPresence({ ...base, nodeId: 'a:b' }), RangeError, 'node ids are part of members: no ":"')
  t.throws(() => createPresence({ ...base, nodeId: '' }), RangeError)
  t.throws(() => createPresence({ ...base, ttlMs: 600, refreshMs: 600 }), RangeError, 'a refresh no more often than the ttl would let live entries expire')
  t.throws(() => createPresence({ ...base, ttlMs: 0 }), RangeError)
  t.throws(() => createPresence({ ...base, ttlMs: 600, refreshMs: 0 }), RangeError)
})
