import { randomBytes } from 'node:crypto'
import { Command } from 'ioredis'
import t from 'tap'
import {
  channelName, canaryChannelName, decodeEnvelope, encodeEnvelope, ENVELOPE_HEADER_BYTES, ENVELOPE_VERSION, newNodeId,
  nodeIdFromBytes, nodeIdToBytes, reconnectDelay, type Frame,
} from '@streaming-service/core'
import { PublishCommand } from '../src/backplane/publish-command.js'

const nodeId = newNodeId()
const origin = nodeIdToBytes(nodeId)

t.test('node ids are UUIDs carried as 16 raw bytes', async (t) => {
  t.equal(origin.length, 16)
  t.equal(nodeIdFromBytes(origin), nodeId, 'round trip')
  t.equal(nodeIdFromBytes(nodeIdToBytes(nodeId.toUpperCase())), nodeId, 'upper case input, lower case output')
  t.throws(() => nodeIdToBytes('not-a-uuid'), RangeError)
  t.not(newNodeId(), newNodeId(), 'random per node')
})

t.test('a frame round-trips byte for byte with kind and seq', async (t) => {
  const cases: Frame[] = [
    { kind: 1, seq: 0, payload: Buffer.alloc(0) },
    { kind: 2, seq: 1, payload: Buffer.from('héllo ✓') },
    { kind: 3, seq: 2 ** 32 - 1, payload: Buffer.from('{"type":"finished"}') },
    { kind: 4, seq: 3, payload: Buffer.from([0, 0, 0, 2, 0x7b, 0x7d]) },
    { kind: 1, seq: 2 ** 32, payload: randomBytes(70_000) },
    { kind: 1, seq: Number.MAX_SAFE_INTEGER, payload: Buffer.from([0, 0xff, 0x1a, 0x45, 0xdf, 0xa3]) },
  ]
  for (const frame of cases) {
    const message = encodeEnvelope(origin, frame)
    t.equal(message.length, ENVELOPE_HEADER_BYTES + frame.payload.length, `${frame.kind} ${frame.seq}: header + payload, nothing else`)
    t.equal(message[0], ENVELOPE_VERSION)
    const decoded = decodeEnvelope(message)
    if (decoded === null) {
      t.fail('decoded')
      continue
    }
    t.equal(decoded.kind, frame.kind)
    t.equal(decoded.seq, frame.seq)
    t.ok(decoded.payload.equals(frame.payload), 'payload bytes')
    t.ok(decoded.origin.equals(origin), 'origin bytes')
    t.equal(decoded.payload.buffer, message.buffer, 'the payload is a view into the message, not a copy')
    t.equal(decoded.payload.byteOffset, message.byteOffset + ENVELOPE_HEADER_BYTES)
  }
})

t.test('the layout is the documented one (34-byte header, big-endian seq and sentAt)', async (t) => {
  const sentAt = 1_795_556_000_123.25
  const message = encodeEnvelope(origin, { kind: 2, seq: 2 ** 32 + 5, payload: Buffer.from('ab'), sentAt })
  t.same([...message.subarray(0, 2)], [1, 2], 'version 1, kind 2')
  t.ok(message.subarray(2, 18).equals(origin), 'origin at 2..17')
  t.same([...message.subarray(18, 26)], [0, 0, 0, 1, 0, 0, 0, 5], 'seq high then low word')
  t.equal(message.readDoubleBE(26), sentAt, 'sentAt at 26..33')
  t.equal(message.subarray(34).toString(), 'ab')
  t.equal(decodeEnvelope(message)?.sentAt, sentAt)
  t.equal(decodeEnvelope(encodeEnvelope(origin, { kind: 3, seq: 0, payload: Buffer.alloc(0) }))?.sentAt, undefined, 'unknown sentAt stays unknown')
})

t.test('encoding copies the payload once: the caller may reuse its buffer', async (t) => {
  const payload = Buffer.from('original')
  const message = encodeEnvelope(origin, { kind: 1, seq: 3, payload })
  payload.fill(0)
  t.equal(decodeEnvelope(message)?.payload.toString(), 'original')
})

t.test('decode returns null for truncated, garbage and foreign input; never throws', async (t) => {
  const good = encodeEnvelope(origin, { kind: 1, seq: 9, payload: Buffer.from('xyz') })
  for (let length = 0; length < ENVELOPE_HEADER_BYTES; length++) {
    if (decodeEnvelope(good.subarray(0, length)) !== null) t.fail(`truncated to ${length} bytes decoded`)
  }
  t.pass('every truncation below the header is null')
  t.not(decodeEnvelope(good.subarray(0, ENVELOPE_HEADER_BYTES)), null, 'a header alone is an empty payload')

  const wrongVersion = Buffer.from(good)
  wrongVersion[0] = 2
  t.equal(decodeEnvelope(wrongVersion), null, 'another version')
  const noVersion = Buffer.from(good)
  noVersion[0] = 0
  t.equal(decodeEnvelope(noVersion), null, 'version 0')
  const reservedKind = Buffer.from(good)
  reservedKind[1] = 0
  t.equal(decodeEnvelope(reservedKind), null, 'kind byte 0 is reserved')
  for (const kind of [5, 0x7f, 0xff]) {
    const opaqueKind = Buffer.from(good)
    opaqueKind[1] = kind
    t.equal(decodeEnvelope(opaqueKind)?.kind, kind, `kind byte ${kind} is carried as is`)
  }
  const hugeSeq = Buffer.from(good)
  hugeSeq.writeUInt32BE(0x0020_0000, 18)
  t.equal(decodeEnvelope(hugeSeq), null, 'a seq beyond 2^53 is not ours')

  t.equal(decodeEnvelope(Buffer.from('{"kind":"media-binary","payload":"aGk="}')), null, 'JSON is not an envelope')
  t.equal(decodeEnvelope('a string' as unknown as Buffer), null, 'a string is not an envelope')
  t.equal(decodeEnvelope(undefined as unknown as Buffer), null, 'nothing is not an envelope')
  let nonNull = 0
  for (let i = 0; i < 2000; i++) {
    const junk = randomBytes(i % 64)
    try {
      const decoded = decodeEnvelope(junk)
      if (decoded !== null && (junk[0] !== 1 || junk.length < ENVELOPE_HEADER_BYTES)) nonNull++
    } catch {
      t.fail('decode threw')
      return
    }
  }
  t.equal(nonNull, 0, 'random bytes never decode unless they look like a version-1 header')
})

t.test('encoding refuses what it cannot represent', async (t) => {
  t.throws(() => encodeEnvelope(origin, { kind: 1, seq: -1, payload: Buffer.alloc(0) }), RangeError)
  t.throws(() => encodeEnvelope(origin, { kind: 1, seq: 2 ** 53, payload: Buffer.alloc(0) }), RangeError)
  t.throws(() => encodeEnvelope(origin, { kind: 256, seq: 1, payload: Buffer.alloc(0) }), RangeError)
  t.throws(() => encodeEnvelope(origin, { kind: 0, seq: 1, payload: Buffer.alloc(0) }), RangeError)
  t.throws(() => encodeEnvelope(Buffer.alloc(15), { kind: 3, seq: 1, payload: Buffer.alloc(0) }), RangeError)
})

t.test('channel names come from one helper under the key prefix', async (t) => {
  t.equal(channelName('ss:', 'abc'), 'ss:session:abc')
  t.equal(canaryChannelName('ss:', nodeId), `ss:canary:${nodeId}`)
})

t.test('reconnect delays are capped at 500 ms', async (t) => {
  for (let attempt = 1; attempt < 100; attempt++) {
    const delay = reconnectDelay(attempt)
    if (delay < 50 || delay > 500) t.fail(`attempt ${attempt}: ${delay} ms`)
  }
  t.ok(reconnectDelay(1) < 150, 'the first retry is quick')
})

t.test('PublishCommand writes what ioredis would write for PUBLISH of the encoded envelope, in one buffer', async (t) => {
  for (const [channel, frame] of [
    ['ss:s:abc', { kind: 2, seq: 0, payload: Buffer.alloc(0) }],
    ['ss:s:abc', { kind: 3, seq: 2 ** 53 - 1, payload: Buffer.from('x'.repeat(70_000)), sentAt: 1_700_000_000_123.5 }],
    ['prefix:ünïcode:s:😀', { kind: 255, seq: 7, payload: randomBytes(1024) }],
  ] as const) {
    const ours = new PublishCommand(channel, origin, frame).toWritable()
    const theirs = new Command('publish', [channel, encodeEnvelope(origin, frame)]).toWritable(undefined as never)
    t.ok(Buffer.isBuffer(ours) && ours.equals(Buffer.from(theirs)), `${channel}, ${frame.payload.length} payload bytes`)
  }
  t.throws(() => new PublishCommand('c', origin, { kind: 0, seq: 1, payload: Buffer.alloc(1) }), RangeError, 'kind 0 is refused as encodeEnvelope refuses it')
})
