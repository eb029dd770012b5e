import { spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import {
  connected, metric, openSocket, startCluster, waitFor, type Cluster, type CreatedSession, type ServiceProcess, type TestSocket,
} from '@streaming-service/testing'
import { createScanner, type ContainerFormat, type ScanEvent } from '../src/media/index.js'
import { decode, prng } from './media-helper.js'

// SPEC §5 "Late joiners" across the cluster: a WebM and a fragmented MP4
// stream are encoded by ffmpeg in real time and published to relay A in
// 1 B – 20 KB messages. An operator connected from the start (on relay B)
// gets the publisher's messages unchanged; operators joining after 4 s — on
// relay B, which then subscribes to the session for the first time, and on
// relay A, the publisher's own — get the init segment, then the stream from a
// keyframe segment's first byte to its end, which ffmpeg decodes without a
// single error.

const ENCODERS: Record<ContainerFormat, string[]> = {
  webm: ['-c:v', 'libvpx', '-deadline', 'realtime', '-g', '25', '-f', 'webm', '-live', '1'],
  mp4: ['-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-profile:v', 'baseline', '-g', '25', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof'],
}
const JOIN_AFTER_MS = 4000
const STREAM_SECONDS = 8

let cluster: Cluster
t.before(async () => {
  cluster = await startCluster(t, { relays: 2 })
})

interface Publication {
  /** The messages as sent, in order. */
  sent: Buffer[]
  firstSentAt: Promise<number>
  /** Resolves when ffmpeg ended and every message was handed to the socket. */
  done: Promise<void>
}

/** ffmpeg encodes the test pattern in real time; its output goes out in messages of 1 B to 20 KB. */
function publishLive (publisher: TestSocket, format: ContainerFormat, seed: number, seconds = STREAM_SECONDS): Publication {
  const random = prng(seed)
  const ffmpeg = spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-t', String(seconds),
    ...ENCODERS[format], 'pipe:1',
  ], { stdio: ['ignore', 'pipe', 'inherit'] })
  const sent: Buffer[] = []
  let pending = Buffer.alloc(0)
  let markFirst: (at: number) => void
  const firstSentAt = new Promise<number>((resolve) => { markFirst = resolve })
  ffmpeg.stdout.on('data', (data: Buffer) => {
    pending = Buffer.concat([pending, data])
    // Mostly KB-sized messages, some tiny ones so headers straddle messages.
    while (pending.length > 0) {
      const size = random() < 0.1 ? 1 + Math.floor(random() * 16) : 1 + Math.floor(random() * 20 * 1024)
      if (size > pending.length && pending.length < 20 * 1024) break
      const message = pending.subarray(0, Math.min(size, pending.length))
      pending = pending.subarray(message.length)
      if (sent.length === 0) markFirst(Date.now())
      if (publisher.socket.readyState !== WebSocket.OPEN) continue
      sent.push(Buffer.from(message))
      publisher.socket.send(message, { binary: true })
    }
  })
  const done = new Promise<void>((resolve, reject) => {
    ffmpeg.on('close', (code) => {
      if (code !== 0) return reject(new Error(`ffmpeg exited with ${code}`))
      if (pending.length > 0) {
        sent.push(Buffer.from(pending))
        publisher.socket.send(pending, { binary: true })
      }
      resolve()
    })
  })
  t.teardown(() => { ffmpeg.kill('SIGKILL') })
  return { sent, firstSentAt, done }
}

/** An operator that records when each message arrived. */
function timedOperator (url: string): { socket: TestSocket, joinedAt: number, arrivals: number[] } {
  const joinedAt = Date.now()
  const socket = openSocket(t, url)
  const arrivals: number[] = []
  socket.socket.on('message', () => arrivals.push(Date.now()))
  return { socket, joinedAt, arrivals }
}

function scan (format: ContainerFormat, stream: Buffer): { init: Buffer, keyframes: number[] } {
  const events: ScanEvent[] = createScanner(format).push(stream)
  const init = events.find((event) => event.type === 'init')
  if (init?.type !== 'init') throw new Error('no init segment in the published stream')
  const keyframes = events.flatMap((event) => event.type === 'segment' && event.keyframe ? [event.offset] : [])
  return { init: init.bytes, keyframes }
}

async function receivedAll (operator: TestSocket, total: number): Promise<void> {
  await waitFor(`${total} bytes at the operator`, () => operator.messages.reduce((sum, m) => sum + m.data.length, 0) >= total, 15_000)
}

async function checkLateJoiner (
  t: Test, format: ContainerFormat, where: string, joiner: ReturnType<typeof timedOperator>, published: Buffer
): Promise<void> {
  const { init, keyframes } = scan(format, published)
  const messages = joiner.socket.messages
  t.ok(messages.length >= 2, `${where}: init segment and media received`)
  t.ok(messages[0]!.data.equals(init), `${where}: the first message is the init segment (${init.length} bytes)`)
  const rest = Buffer.concat(messages.slice(1).map((m) => m.data))
  const start = published.length - rest.length
  t.ok(published.subarray(start).equals(rest), `${where}: then the published bytes from offset ${start} to the end, none missing or duplicated`)
  t.ok(keyframes.includes(start), `${where}: offset ${start} is the first byte of a keyframe segment`)
  t.ok(start > init.length, `${where}: it joined mid-stream (${((start / published.length) * 100).toFixed(0)} % into it)`)
  const firstMediaMs = joiner.arrivals[1]! - joiner.joinedAt
  t.comment(`${format} ${where}: first media bytes ${firstMediaMs} ms after connecting; ${rest.length} bytes from the cache and live`)
  t.ok(firstMediaMs < 500, `${where}: first media bytes within 500 ms of joining (${firstMediaMs} ms)`)
  const decoded = await decode(Buffer.concat([init, rest]))
  t.equal(decoded.errors, '', `${where}: ffmpeg decodes it without an error`)
  t.equal(decoded.code, 0, `${where}: ffmpeg exits 0`)
  t.ok(decoded.frames >= 25, `${where}: ${decoded.frames} frames decoded`)
}

async function lateJoinScenario (t: Test, format: ContainerFormat, seed: number): Promise<void> {
  const [a, b] = cluster.relays as [ServiceProcess, ServiceProcess]
  const session: CreatedSession = await cluster.createSession()
  const publisher = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  // B follows the session once relay A's answer to its sync request came (the stream is empty yet).
  const syncsBefore = await metric(b, 'relay_stream_syncs_total')
  const fromStart = await connected(t, cluster.wsUrl(b, session.session_id, 'from-start'))
  await waitFor('relay B to follow the session', async () => await metric(b, 'relay_stream_syncs_total') > syncsBefore)
  const publication = publishLive(publisher, format, seed)
  const firstSentAt = await publication.firstSentAt
  await waitFor(`${JOIN_AFTER_MS} ms of stream`, () => Date.now() - firstSentAt >= JOIN_AFTER_MS, JOIN_AFTER_MS + 2000, 20)
  const onB = timedOperator(cluster.wsUrl(b, session.session_id, 'late-on-b'))
  const onA = timedOperator(cluster.wsUrl(a, session.session_id, 'late-on-a'))
  await publication.done
  const published = Buffer.concat(publication.sent)
  await Promise.all([receivedAll(fromStart, published.length), receivedAll(onB.socket, 1), receivedAll(onA.socket, 1)])
  await waitFor('the late joiners to reach the end of the stream', () => [onA, onB].every(({ socket }) => {
    const last = socket.messages.at(-1)?.data
    return last !== undefined && published.subarray(published.length - last.length).equals(last)
  }), 15_000)

  t.equal(fromStart.messages.length, publication.sent.length, `from the start: all ${publication.sent.length} messages`)
  t.ok(fromStart.messages.every((m, i) => m.binary && m.data.equals(publication.sent[i]!)), 'from the start: every message unchanged, in order')
  await checkLateJoiner(t, format, 'late joiner on relay B (first subscriber there)', onB, published)
  await checkLateJoiner(t, format, 'late joiner on relay A (the publisher\'s)', onA, published)
}

t.test('WebM (libvpx, live): late joiners on either relay start at the init segment and a keyframe cluster; from-start operators get it unchanged', async (t) => {
  await lateJoinScenario(t, 'webm', 1)
})

t.test('fragmented MP4 (libx264): late joiners on either relay start at the init segment and a keyframe fragment; from-start operators get it unchanged', async (t) => {
  await lateJoinScenario(t, 'mp4', 2)
})

t.test('publisher reconnect: operators with bytes of the old WebM stream are closed with 4205; reconnected, they get the new stream from its init segment', async (t) => {
  const [a, b] = cluster.relays as [ServiceProcess, ServiceProcess]
  const session = await cluster.createSession()
  const first = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  const onA = await connected(t, cluster.wsUrl(a, session.session_id, 'watcher-a'))
  const onB = await connected(t, cluster.wsUrl(b, session.session_id, 'watcher-b'))
  const old = publishLive(first, 'webm', 3, 6)
  await Promise.all([receivedAll(onA, 1), receivedAll(onB, 1)])

  // The client reconnects, this time through relay B: a new connection, a new stream.
  const second = await connected(t, cluster.wsUrl(b, session.session_id, session.client_id, session.stream_key))
  t.equal((await first.closed).code, 4409, 'the old publisher connection is replaced (4409)')
  for (const [where, operator] of [['relay A', onA], ['relay B', onB]] as const) {
    const closed = await operator.closed
    t.equal(closed.code, 4205, `${where}: the operator is told the stream restarted (4205 "${closed.reason}")`)
  }
  await old.done

  const again = timedOperator(cluster.wsUrl(a, session.session_id, 'watcher-a'))
  const fresh = publishLive(second, 'webm', 4, 3)
  await fresh.done
  const published = Buffer.concat(fresh.sent)
  await receivedAll(again.socket, 1)
  await waitFor('the reconnected operator to reach the end of the new stream', () => {
    const last = again.socket.messages.at(-1)?.data
    return last !== undefined && published.subarray(published.length - last.length).equals(last)
  }, 15_000)
  const received = Buffer.concat(again.socket.messages.map((m) => m.data))
  const { init, keyframes } = scan('webm', published)
  t.ok(received.subarray(0, init.length).equals(init), 'the reconnected operator starts with the new stream\'s init segment')
  const resumedAt = published.length - (received.length - init.length)
  t.ok((resumedAt === init.length || keyframes.includes(resumedAt)) && published.subarray(resumedAt).equals(received.subarray(init.length)),
    'then the new stream from a keyframe segment to its end')
  const decoded = await decode(received)
  t.equal(decoded.errors, '', 'ffmpeg decodes it without an error')
})

t.test('publisher reconnect on an opaque stream: operators keep their connection and get the new messages', async (t) => {
  const [a, b] = cluster.relays as [ServiceProcess, ServiceProcess]
  const session = await cluster.createSession()
  const first = await connected(t, cluster.wsUrl(a, session.session_id, session.client_id, session.stream_key))
  const onB = await connected(t, cluster.wsUrl(b, session.session_id, 'watcher'))
  await waitFor('the operator to get the first message', async () => {
    await first.send('{"frame":1}')
    return onB.messages.length > 0
  })
  const second = await connected(t, cluster.wsUrl(b, session.session_id, session.client_id, session.stream_key))
  t.equal((await first.closed).code, 4409, 'the old publisher connection is replaced (4409)')
  await second.send('{"frame":2}')
  await waitFor('the new publisher\'s message', () => onB.messages.some((m) => m.data.toString() === '{"frame":2}'))
  t.equal(onB.socket.readyState, WebSocket.OPEN, 'the operator stayed connected')
})
