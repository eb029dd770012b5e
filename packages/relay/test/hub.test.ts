import { randomBytes, randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { channelName } from '@streaming-service/core'
import { CloseCode } from '@streaming-service/protocol'
import { waitFor, type TestSocket } from '@streaming-service/testing'
import { createScanner, type ContainerFormat } from '../src/media/index.js'
import { FrameKind } from '../src/wire.js'
import { inProcessCluster } from './hub-helper.js'
import { decode, mediaMaker, prng } from './media-helper.js'

// Several hubs in one process on one MemoryBus: the relay's cross-node
// behaviour (fan-out, late join, lost frames, takeover, restarts, the end of
// a session) without spawning processes. Sockets are real.

const ffmpeg = await mediaMaker(t, 'hub-', '320x240')
/** Ten groups of pictures in 4 s. */
const streams: Record<ContainerFormat, Buffer> = {
  webm: await ffmpeg('out.webm', ['-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '1M', '-g', '10', '-f', 'webm', '-live', '1']),
  mp4: await ffmpeg('out.mp4', [
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-profile:v', 'baseline', '-b:v', '1M', '-g', '10',
    '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof',
  ]),
}

/** The stream's init segment and the offsets of its keyframe segments. */
function layout (format: ContainerFormat): { init: Buffer, keyframes: number[] } {
  const events = createScanner(format).push(streams[format])
  const init = events.find((event) => event.type === 'init')
  if (init?.type !== 'init') throw new Error(`no init segment in the ${format} stream`)
  return { init: init.bytes, keyframes: events.flatMap((event) => event.type === 'segment' && event.keyframe ? [event.offset] : []) }
}

function messagesOf (bytes: Buffer, seed: number, maxSize = 20_000): Buffer[] {
  const random = prng(seed)
  const messages: Buffer[] = []
  for (let offset = 0; offset < bytes.length;) {
    const size = 1 + Math.floor(random() * maxSize)
    messages.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return messages
}

const received = (socket: TestSocket): Buffer => Buffer.concat(socket.messages.map((message) => message.data))
const nextTurn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

/** A late joiner's bytes are the init segment, then the stream from one of its keyframe segments to the end. */
function assertLateJoin (t: Test, format: ContainerFormat, got: Buffer, what: string): void {
  const { init, keyframes } = layout(format)
  const full = streams[format]
  t.ok(got.subarray(0, init.length).equals(init), `${what}: starts with the init segment`)
  const start = keyframes.find((offset) => full.length - offset === got.length - init.length)
  t.not(start, undefined, `${what}: then the stream from a keyframe segment (${got.length - init.length} bytes)`)
  if (start !== undefined) t.ok(got.subarray(init.length).equals(full.subarray(start)), `${what}: byte for byte to the end`)
}

t.test('fan-out: the publisher\'s messages reach operators on its node and on two others, byte-exact, in order, with their type', async (t) => {
  const { node } = await inProcessCluster(t)
  const nodes = [node(), node(), node()]
  const session = randomUUID()
  const operators = await Promise.all(nodes.map(async (n) => await n.operator(session)))
  const publisher = await nodes[0]!.publisher(session, 1)
  const random = prng(1)
  const sent = Array.from({ length: 300 }, (_, i) => i % 7 === 3 ? `text ${i} ✓` : randomBytes(1 + Math.floor(random() * 5000)))
  for (const message of sent) publisher.send(message)
  for (const [i, operator] of operators.entries()) {
    const got = await operator.waitForMessages(sent.length)
    const mismatch = got.findIndex((message, j) => {
      const want = sent[j]!
      return typeof want === 'string' ? message.binary || message.data.toString() !== want : !message.binary || !message.data.equals(want)
    })
    t.equal(mismatch, -1, `node ${i}: ${sent.length} messages, byte-exact, in order, with their type`)
  }
})

for (const format of ['webm', 'mp4'] as const) {
  t.test(`${format}: late joiners on a node that did not follow the session, and on the publisher's, start at the init segment and a keyframe segment`, async (t) => {
    const { node } = await inProcessCluster(t)
    const [a, b] = [node(), node()]
    const session = randomUUID()
    const fromStart = await a.operator(session)
    const publisher = await a.publisher(session, 1)
    const messages = messagesOf(streams[format], 7)
    const joinAt = Math.floor(messages.length * 0.4)
    for (const message of messages.slice(0, joinAt)) publisher.send(message)
    const lateElsewhere = await b.operator(session)
    const lateHere = await a.operator(session)
    for (const message of messages.slice(joinAt)) {
      publisher.send(message)
      await nextTurn()
    }
    const tail = streams[format].subarray(-1000)
    for (const operator of [fromStart, lateElsewhere, lateHere]) {
      await waitFor('the end of the stream', () => received(operator).subarray(-1000).equals(tail))
    }
    t.ok(received(fromStart).equals(streams[format]), 'the operator from the start gets the stream unchanged')
    assertLateJoin(t, format, received(lateElsewhere), 'late joiner on another node')
    assertLateJoin(t, format, received(lateHere), 'late joiner on the publisher\'s node')
    const decoded = await decode(received(lateElsewhere))
    t.equal(decoded.errors, '', 'the late joiner\'s bytes decode without an error')
    t.ok(decoded.frames > 0, `${decoded.frames} frames decoded`)
  })
}

t.test('lost frames on a WebM stream: operators with bytes reconnect (stream interrupted), the node syncs again for the next joiner', async (t) => {
  const { node } = await inProcessCluster(t)
  let mediaFrames = 0
  const a = node()
  const b = node({ lossy: (frame) => frame.kind === FrameKind.mediaBinary && ++mediaFrames === 20 })
  const session = randomUUID()
  const onB = await b.operator(session)
  const publisher = await a.publisher(session, 1)
  const messages = messagesOf(streams.webm, 11, 4000)
  t.ok(messages.length > 40, `${messages.length} messages: the loss is mid-stream`)
  for (const message of messages.slice(0, 40)) publisher.send(message)
  t.equal((await onB.closed).code, CloseCode.streamRestarted, 'the operator that got bytes is closed with 4205')
  const next = await b.operator(session)
  for (const message of messages.slice(40)) {
    publisher.send(message)
    await nextTurn()
  }
  const tail = streams.webm.subarray(-1000)
  await waitFor('the end of the stream on B', () => received(next).subarray(-1000).equals(tail))
  assertLateJoin(t, 'webm', received(next), 'the next joiner on B')
})

t.test('lost frames on an opaque stream: operators stay and miss only what was lost', async (t) => {
  const { node } = await inProcessCluster(t)
  let frames = 0
  const a = node()
  const b = node({ lossy: (frame) => frame.kind === FrameKind.mediaText && ++frames === 10 })
  const session = randomUUID()
  const onB = await b.operator(session)
  const publisher = await a.publisher(session, 1)
  for (let i = 0; i < 30; i++) publisher.send(`message ${i}`)
  const got = await onB.waitForMessages(29)
  t.same(got.map((message) => message.data.toString()), Array.from({ length: 30 }, (_, i) => `message ${i}`).filter((_, i) => i !== 9))
  t.equal(onB.socket.readyState, onB.socket.OPEN, 'still connected')
  const drops = (await b.registry.getSingleMetric('relay_frames_dropped_total')!.get()).values
  t.same(drops.map(({ labels, value }) => [labels.reason, value]), [['backplane_gap', 1]], 'the lost message is counted where it went missing')
})

t.test('takeover: a newer publisher on another node replaces the older (4409) and its stream reaches every node', async (t) => {
  const { node } = await inProcessCluster(t)
  const [a, b] = [node(), node()]
  const session = randomUUID()
  const operators = [await a.operator(session), await b.operator(session)]
  const older = await a.publisher(session, 1)
  for (let i = 0; i < 5; i++) older.send(`older ${i}`)
  await Promise.all(operators.map(async (operator) => await operator.waitForMessages(5)))
  const newer = await b.publisher(session, 2)
  t.equal((await older.client.closed).code, CloseCode.conflict, 'the older publisher connection is closed with 4409')
  for (let i = 0; i < 5; i++) newer.send(`newer ${i}`)
  for (const operator of operators) {
    const got = await operator.waitForMessages(10)
    t.same(got.map((message) => message.data.toString()), [...[0, 1, 2, 3, 4].map((i) => `older ${i}`), ...[0, 1, 2, 3, 4].map((i) => `newer ${i}`)])
  }
  t.equal(b.hub.counts(session).publisher, true)
  t.equal(a.hub.counts(session).publisher, false)
})

t.test('stream restart: a reconnected publisher\'s new WebM stream closes operators with bytes of the old one (4205) on every node', async (t) => {
  const { node } = await inProcessCluster(t)
  const [a, b] = [node(), node()]
  const session = randomUUID()
  const operators = [await a.operator(session), await b.operator(session)]
  const first = await a.publisher(session, 1)
  for (const message of messagesOf(streams.webm, 3).slice(0, 10)) first.send(message)
  await Promise.all(operators.map(async (operator) => await operator.waitForMessages(10)))
  first.detach()
  await a.publisher(session, 2)
  for (const operator of operators) t.equal((await operator.closed).code, CloseCode.streamRestarted)
})

t.test('stream restart on an opaque stream: operators stay and get the new connection\'s messages', async (t) => {
  const { node } = await inProcessCluster(t)
  const [a, b] = [node(), node()]
  const session = randomUUID()
  const operators = [await a.operator(session), await b.operator(session)]
  const first = await a.publisher(session, 1)
  first.send('first')
  await Promise.all(operators.map(async (operator) => await operator.waitForMessages(1)))
  first.detach()
  const second = await a.publisher(session, 2)
  second.send('second')
  for (const operator of operators) {
    t.same((await operator.waitForMessages(2)).map((message) => message.data.toString()), ['first', 'second'])
  }
})

t.test('finishing a session closes its sockets on every node (4410); nodes that saw it refuse it from then on', async (t) => {
  const { node } = await inProcessCluster(t)
  const [a, b, c] = [node(), node(), node()]
  const session = randomUUID()
  const publisher = await a.publisher(session, 1)
  const operators = [await a.operator(session), await b.operator(session)]
  a.hub.finishSession(session)
  for (const socket of [publisher.client, ...operators]) t.equal((await socket.closed).code, CloseCode.finished)
  t.ok(a.hub.isFinished(session))
  t.ok(b.hub.isFinished(session), 'a node with sockets of it heard the signal')
  t.notOk(c.hub.isFinished(session), 'a node without sockets of it is not subscribed (admission refuses it there)')
})

t.test('a node subscribes to a session\'s channel with its first socket of it and unsubscribes after the last', async (t) => {
  const { bus, node } = await inProcessCluster(t)
  const b = node()
  const session = randomUUID()
  const channel = channelName('hub-test:', session)
  t.equal(bus.subscribers(channel), 0)
  const first = await b.operator(session)
  const second = await b.operator(session)
  t.equal(bus.subscribers(channel), 1, 'one subscription for two operators')
  await first.close()
  await waitFor('the first operator to leave', () => b.hub.counts(session).operators === 1)
  t.equal(bus.subscribers(channel), 1, 'still subscribed while an operator is here')
  await second.close()
  await waitFor('the session to leave the node', () => b.hub.sessionCount === 0)
  t.equal(bus.subscribers(channel), 0, 'unsubscribed after the last')
})
