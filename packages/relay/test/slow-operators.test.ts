import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import WebSocket from 'ws'
import {
  connected, cpuSeconds, metric, primed, sampleRss, startCluster, waitFor, type Cluster, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'

// SPEC §5 "Slow operators": a slow operator never slows the publisher or the
// others, its unsent data is bounded (past the bound frames are dropped and
// counted), one that stays behind is closed with 4429, and memory stays
// bounded whatever operators do.
//
// A "stalled reader" is a real client that stops reading its TCP socket
// (ws's pause(): the net.Socket is paused): the kernel buffers fill, then the
// relay's bufferedAmount for it grows.

const MESSAGE_SIZE = 64 * 1024
/** 64 KB × 160/s ≈ 10 MB/s: the memory test's stream. */
const RATE = 160
/**
 * 64 KB × 80/s ≈ 5 MB/s: the one-stalled-reader test's stream. Its healthy
 * readers live in this test process, on a shared 2-CPU box: at half the rate
 * they stay well inside WS_OPERATOR_MAX_BUFFER (8 MB ≈ 1.6 s of stream) even
 * when the box is busy, while the stalled one still passes it within ~3 s.
 */
const ONE_STALLED_RATE = 80
const HEADER = 16
const MAGIC = 0x534c4f57 // "SLOW"
/** A few random bodies; message `seq` carries BODIES[seq % BODIES.length]. */
const BODIES = Array.from({ length: 7 }, () => randomBytes(MESSAGE_SIZE - HEADER))

// One cluster for the file: control plane + 2 relays, real Redis under its own
// prefix. A low WS_OPERATOR_MAX_LAG makes the 4429 test quick; the memory test
// adds relays of its own on which stalled readers are never cut off.
let cluster: Cluster
t.before(async () => {
  cluster = await startCluster(t, { relays: 2, env: { WS_OPERATOR_MAX_LAG: '1s', WS_MAX_MESSAGE_SIZE: '128KB' } })
})

function message (seq: number): Buffer {
  const buffer = Buffer.allocUnsafe(MESSAGE_SIZE)
  buffer.writeUInt32BE(MAGIC, 0)
  buffer.writeUInt32BE(seq, 4)
  buffer.writeDoubleBE(performance.now(), 8)
  BODIES[seq % BODIES.length]!.copy(buffer, HEADER)
  return buffer
}

interface Tracker {
  received: number
  /** Problems seen: a gap, a reordering, a corrupted or unexpected message. */
  errors: string[]
  latenciesMs: number[]
}

/**
 * Checks every stream message as it arrives (in order, no gap, byte-exact)
 * and records its latency from the publisher's send; the messages are not
 * kept (10 MB/s would pile up in the test process).
 */
function track (operator: TestSocket): Tracker {
  const tracker: Tracker = { received: 0, errors: [], latenciesMs: [] }
  operator.socket.on('message', (data: Buffer, binary: boolean) => {
    const now = performance.now()
    operator.messages.length = 0
    if (!binary || data.length !== MESSAGE_SIZE || data.readUInt32BE(0) !== MAGIC) {
      if (tracker.errors.length < 10) tracker.errors.push(`unexpected message (${binary ? 'binary' : 'text'}, ${data.length} bytes)`)
      return
    }
    const seq = data.readUInt32BE(4)
    if (seq !== tracker.received && tracker.errors.length < 10) tracker.errors.push(`expected #${tracker.received}, got #${seq}`)
    if (!data.subarray(HEADER).equals(BODIES[seq % BODIES.length]!) && tracker.errors.length < 10) tracker.errors.push(`#${seq} corrupted`)
    tracker.latenciesMs.push(now - data.readDoubleBE(8))
    tracker.received = seq + 1
  })
  return tracker
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

interface StreamResult {
  sent: number
  /** Messages per second, measured from the first send to the last send callback. */
  achievedRate: number
  /** Largest bufferedAmount the publisher's own socket reached. */
  maxBuffered: number
}

/**
 * The publisher sends `seconds × rate` 64 KB messages paced at `rate`. Its
 * send callbacks (data handed to the kernel) must keep completing: a relay
 * that stopped reading the publisher would stop them once the TCP buffers
 * are full.
 */
async function stream (publisher: TestSocket, seconds: number, rate: number): Promise<StreamResult> {
  const total = Math.round(seconds * rate)
  const started = performance.now()
  let sent = 0
  let acked = 0
  let lastAckAt = started
  let maxBuffered = 0
  let failure: Error | undefined
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - started) / 1000 * rate) + 1)
    while (sent < due) {
      publisher.socket.send(message(sent++), { binary: true }, (err) => {
        if (err !== undefined && err !== null) failure ??= err
        acked++
        lastAckAt = performance.now()
      })
    }
    maxBuffered = Math.max(maxBuffered, publisher.socket.bufferedAmount)
    await delay(4)
  }
  await waitFor('the publisher\'s last send callbacks', () => acked === total || failure !== undefined, 10_000, 10)
  if (failure !== undefined) throw failure
  return { sent: total, achievedRate: total / ((lastAckAt - started) / 1000), maxBuffered }
}

const MB = 1024 * 1024

t.test('one stalled reader: the healthy operators on both relays get every message in order with low latency; the stalled one is dropped from, then closed with 4429', async (t) => {
  const [a, b] = cluster.relays as [ServiceProcess, ServiceProcess]
  const session = await cluster.createSession()
  const healthyA = await connected(t, cluster.wsUrl(a, session.session_id, 'healthy-a'))
  const healthyB = await connected(t, cluster.wsUrl(b, session.session_id, 'healthy-b'))
  const stalled = await connected(t, cluster.wsUrl(a, session.session_id, 'stalled'))
  const publisher = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, [healthyA, healthyB, stalled])
  const droppedBefore = await metric(a, 'relay_frames_dropped_total', { reason: 'slow_operator' })

  stalled.socket.pause()
  const stalledAt = performance.now()
  const trackers = [track(healthyA), track(healthyB)]
  let stalledGot = 0
  stalled.socket.on('message', () => { stalledGot++; stalled.messages.length = 0 })

  // Resume the stalled reader as soon as the relay gives up on it, so it
  // reads what was already buffered and then the close frame.
  const cutOff = a.waitForLog((line) => line.msg === 'operator too slow: closing with 4429' && line.userId === 'stalled', 30_000)
    .then(() => {
      const after = performance.now() - stalledAt
      stalled.socket.resume()
      return after
    })
  cutOff.catch(() => {})

  const result = await stream(publisher, 8, ONE_STALLED_RATE)
  const cutAfterMs = await cutOff
  t.ok(cutAfterMs < 8000, `the relay cut the stalled reader off ${Math.round(cutAfterMs)} ms after it stopped reading (WS_OPERATOR_MAX_LAG 1 s)`)

  for (const [i, tracker] of trackers.entries()) {
    const where = i === 0 ? 'on the publisher\'s relay' : 'on the other relay'
    await waitFor(`every message ${where}`, () => tracker.received >= result.sent || tracker.errors.length > 0, 20_000)
    t.same(tracker.errors, [], `healthy operator ${where}: every message in order, byte for byte, no gap`)
    t.equal(tracker.received, result.sent, `healthy operator ${where}: ${tracker.received}/${result.sent} messages`)
    const sorted = [...tracker.latenciesMs].sort((x, y) => x - y)
    const p50 = percentile(sorted, 0.5)
    const p99 = percentile(sorted, 0.99)
    t.comment(`latency ${where}: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`)
    t.ok(p99 < 1000, `healthy operator ${where}: low latency (p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms)`)
  }

  const closed = await stalled.closed
  t.equal(closed.code, 4429, `the stalled reader ends with 4429 ("${closed.reason}")`)
  t.ok(closed.reason.length > 0, 'with a reason')
  t.ok(stalledGot < result.sent, `the stalled reader got ${stalledGot}/${result.sent} messages: the rest were dropped`)

  t.comment(`publisher: ${result.achievedRate.toFixed(1)} msg/s (target ${ONE_STALLED_RATE}), max bufferedAmount ${result.maxBuffered} bytes`)
  t.ok(result.achievedRate >= ONE_STALLED_RATE * 0.8, `the publisher kept its rate: ${result.achievedRate.toFixed(1)} msg/s of ${ONE_STALLED_RATE}`)

  const dropped = await metric(a, 'relay_frames_dropped_total', { reason: 'slow_operator' }) - droppedBefore
  t.ok(dropped > 0, `relay_frames_dropped_total{reason="slow_operator"} grew by ${dropped}`)
  await waitFor('the 4429 disconnect in the metrics', async () => await metric(a, 'relay_disconnects_total', { role: 'operator', code: '4429' }) >= 1)
  t.pass('relay_disconnects_total{role="operator",code="4429"} ≥ 1')
  t.equal(await metric(b, 'relay_frames_dropped_total', { reason: 'slow_operator' }), 0, 'nothing dropped on the other relay, where every operator keeps up')
})

t.test('memory stays bounded: three stalled readers on each of two relays of a 10 MB/s stream for 25 s; the publisher is never slowed', async (t) => {
  // Stalled readers are never cut off here (nor pinged out), so only the drop policy bounds memory.
  const env = { WS_OPERATOR_MAX_LAG: '60s', WS_PING_INTERVAL: '60s' }
  const [x, y] = await Promise.all([cluster.addRelay(env), cluster.addRelay(env)])
  const session = await cluster.createSession()
  const stalled = await Promise.all([x, x, x, y, y, y].map(async (relay, i) => await connected(t, cluster.wsUrl(relay, session.session_id, `stalled-${i}`))))
  const publisher = await connected(t, cluster.wsUrl(x, session.session_id, session.client_id, session.stream_key))
  await primed(publisher, stalled)
  for (const operator of stalled) operator.socket.pause()

  const relays = [{ name: 'the publisher\'s relay', relay: x }, { name: 'the other relay (via Redis)', relay: y }]
  const cpuBefore = relays.map(({ relay }) => cpuSeconds(relay.child.pid!))
  const samplers = relays.map(({ relay }) => sampleRss(t, relay.child.pid!, 500))
  const result = await stream(publisher, 25, RATE)

  for (const [i, { name, relay }] of relays.entries()) {
    const growth = samplers[i]!.stop()
    const cpu = cpuSeconds(relay.child.pid!) - cpuBefore[i]!
    t.comment(`${name}: RSS ${(samplers[i]!.baseline / MB).toFixed(1)} MB before, peak growth ${(growth / MB).toFixed(1)} MB over ${samplers[i]!.samples.length} samples; ${cpu.toFixed(2)} CPU-s`)
    t.ok(growth < 150 * MB, `${name}: RSS grew ${(growth / MB).toFixed(1)} MB at peak (< 150 MB)`)
    t.ok(await metric(relay, 'relay_frames_dropped_total', { reason: 'slow_operator' }) > 0, `${name}: the stream reached it and was dropped for the stalled readers`)
    t.equal(await metric(relay, 'relay_connections', { role: 'operator' }), 3, `${name}: the stalled readers are still connected (not cut off: memory is bounded by dropping)`)
  }
  t.equal(stalled.filter((s) => s.socket.readyState !== WebSocket.OPEN).length, 0, 'no stalled reader was closed')

  t.comment(`publisher with every operator stalled: ${result.achievedRate.toFixed(1)} msg/s (${(result.achievedRate * MESSAGE_SIZE / MB).toFixed(2)} MB/s, target ${RATE} msg/s), max bufferedAmount ${result.maxBuffered} bytes`)
  t.ok(result.achievedRate >= RATE * 0.8, `the publisher was never slowed: ${result.achievedRate.toFixed(1)} msg/s of ${RATE}`)
})
