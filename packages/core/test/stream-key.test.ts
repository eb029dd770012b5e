import { createHash } from 'node:crypto'
import t from 'tap'
import { generateStreamKey, hashStreamKey, verifyStreamKey } from '@streaming-service/core'

t.test('stream keys carry at least 128 bits of randomness and are URL-safe', async (t) => {
  const keys = new Set(Array.from({ length: 1000 }, generateStreamKey))
  t.equal(keys.size, 1000, 'no repeats in 1000 keys')
  for (const key of keys) {
    t.match(key, /^[A-Za-z0-9_-]+$/)
    // base64url: 6 bits per character
    t.ok(key.length * 6 >= 128, `${key.length} characters`)
    t.equal(encodeURIComponent(key), key)
  }
})

t.test('keys are stored as their SHA-256 and verified against it', async (t) => {
  const key = generateStreamKey()
  const stored = hashStreamKey(key)
  t.same(stored, createHash('sha256').update(key).digest())
  t.notOk(stored.toString('utf8').includes(key), 'the hash does not contain the key')
  t.equal(verifyStreamKey(key, stored), true)
  t.equal(verifyStreamKey(key + 'x', stored), false)
  t.equal(verifyStreamKey('', stored), false)
  t.equal(verifyStreamKey(undefined, stored), false)
  t.equal(verifyStreamKey(key, Buffer.alloc(0)), false, 'a malformed stored hash never matches')
})

t.test('no stream key starts with "-", which a command line would read as an option', async (t) => {
  // One in 64 base64url strings does; 20 000 keys would show ~300 of them.
  const keys = Array.from({ length: 20_000 }, generateStreamKey)
  t.equal(keys.filter((key) => key.startsWith('-')).length, 0)
  t.ok(new Set(keys.map((key) => key[0])).size >= 60, 'every other first character still occurs')
})
