import t from 'tap'
import WebSocket from 'ws'
import { createScanner, type ContainerFormat } from '../src/media/index.js'
import { OperatorSink, type SinkDropReason } from '../src/operator-sink.js'
import { OutgoingMessage } from '../src/frames.js'
import { SessionStream } from '../src/stream.js'
import { decode, mediaMaker, prng } from './media-helper.js'

// SPEC §5 "Slow operators" on media streams: an operator that falls behind
// gets its current segment completed, then nothing until a keyframe segment
// starts after it caught up, so what it receives still decodes; opaque
// streams drop whole messages. The socket is a stand-in whose bufferedAmount
// the test sets, so "behind" is exact and the test is deterministic.

const ffmpeg = await mediaMaker(t, 'operator-sink-', '320x240')
/** Ten groups of pictures in 4 s. */
const streams: Record<ContainerFormat, Buffer> = {
  webm: await ffmpeg('out.webm', ['-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '1M', '-g', '10', '-f', 'webm', '-live', '1']),
  mp4: await ffmpeg('out.mp4', [
    '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-profile:v', 'baseline', '-b:v', '1M', '-g', '10',
    '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof',
  ]),
}
const MAX_BUFFERED = 64 * 1024

class StandInSocket {
  readyState: number = WebSocket.OPEN
  bufferedAmount = 0
  readonly sent: Buffer[] = []
  closedWith: number | undefined
  send (data: Buffer): void { this.sent.push(Buffer.from(data)) }
  close (code: number): void { this.closedWith = code; this.readyState = WebSocket.CLOSING }
  terminate (): void {}
  once (): void {}
}

function sinkOn (socket: StandInSocket, drops: Record<SinkDropReason, number>): OperatorSink {
  return new OperatorSink(socket as unknown as WebSocket, {
    maxBufferedBytes: MAX_BUFFERED,
    maxLagMs: 60_000,
    onDrop: (reason) => { drops[reason]++ },
    onSent: () => {},
    onTooSlow: () => {},
  })
}

function messagesOf (bytes: Buffer, seed: number): Buffer[] {
  const random = prng(seed)
  const messages: Buffer[] = []
  for (let offset = 0; offset < bytes.length;) {
    const size = 1 + Math.floor(random() * 20_000)
    messages.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return messages
}

/** What the hub does per message: cache, every sink, then the segments found. */
function deliver (stream: SessionStream, sink: OperatorSink, message: Buffer, binary = true): void {
  const offset = stream.end
  const segments = stream.push(message, binary)
  sink.send(new OutgoingMessage(message, binary, 1), offset, stream)
  for (const segment of segments) sink.segment(segment, stream)
}

for (const format of ['webm', 'mp4'] as const) {
  t.test(`${format}: an operator behind its bound completes the segment, skips to a keyframe segment once caught up, and what it got decodes`, async (t) => {
    const published = streams[format]
    const events = createScanner(format).push(published)
    const segments = events.flatMap((event) => event.type === 'segment' ? [event.offset] : [])
    const keyframes = events.flatMap((event) => event.type === 'segment' && event.keyframe ? [event.offset] : [])
    t.ok(keyframes.length >= 8, `the stream has ${keyframes.length} keyframe segments`)

    const messages = messagesOf(published, 7)
    const stream = new SessionStream()
    stream.restart()
    const socket = new StandInSocket()
    const drops = { slow_operator: 0, keyframe_skip: 0 }
    const sink = sinkOn(socket, drops)
    t.equal(sink.start(stream), 'start', 'connected before the first byte: from the start')
    // Behind for the second quarter of the messages, then caught up.
    const behindFrom = Math.floor(messages.length / 4)
    const behindUntil = Math.floor(messages.length / 2)
    messages.forEach((message, index) => {
      socket.bufferedAmount = index >= behindFrom && index < behindUntil ? MAX_BUFFERED + 1 : 0
      deliver(stream, sink, message)
    })

    const received = Buffer.concat(socket.sent)
    let common = 0
    while (common < received.length && received[common] === published[common]) common++
    t.ok(received.length < published.length, `bytes were skipped (${published.length - received.length} of ${published.length})`)
    // received = published[0, cut) + published[resumedAt, end): cut where a segment starts, resumedAt where a keyframe segment starts.
    const cut = segments.filter((offset) => offset <= common).find((offset) => {
      const resumedAt = published.length - (received.length - offset)
      return keyframes.includes(resumedAt) && resumedAt > offset && published.subarray(resumedAt).equals(received.subarray(offset))
    })
    t.ok(cut !== undefined, 'what it got is the stream up to a segment start, then from a later keyframe segment to the end')
    t.comment(`${format}: sent up to offset ${cut}, resumed at ${published.length - (received.length - (cut ?? 0))} of ${published.length}`)
    t.ok(drops.keyframe_skip > 0, `skipped messages counted as keyframe_skip (${drops.keyframe_skip})`)
    t.equal(drops.slow_operator, 0, 'no whole-message drops on a media stream')
    t.equal(socket.closedWith, undefined, 'not cut off')
    const decoded = await decode(received)
    t.equal(decoded.errors, '', 'ffmpeg decodes what the slow operator got without an error')
    t.equal(decoded.code, 0, 'ffmpeg exits 0')
  })
}

t.test('an opaque stream drops whole messages while the operator is behind', async (t) => {
  const stream = new SessionStream()
  stream.restart()
  const socket = new StandInSocket()
  const drops = { slow_operator: 0, keyframe_skip: 0 }
  const sink = sinkOn(socket, drops)
  sink.start(stream)
  const messages = Array.from({ length: 30 }, (_, i) => Buffer.from(`{"n":${i}}`))
  messages.forEach((message, index) => {
    socket.bufferedAmount = index >= 10 && index < 20 ? MAX_BUFFERED + 1 : 0
    deliver(stream, sink, message, false)
  })
  t.same(socket.sent.map(String), [...messages.slice(0, 10), ...messages.slice(20)].map(String), 'messages 10–19 dropped, the rest unchanged')
  t.equal(drops.slow_operator, 10, 'each counted as slow_operator')
})

t.test('a late joiner waits for the init segment and a keyframe group; a new stream needs a new player', async (t) => {
  const published = streams.webm
  const messages = messagesOf(published, 11)
  const stream = new SessionStream()
  stream.restart()
  // Two bytes in: the format is not known yet, no group exists.
  deliver(stream, sinkOn(new StandInSocket(), { slow_operator: 0, keyframe_skip: 0 }), published.subarray(0, 2))
  const socket = new StandInSocket()
  const sink = sinkOn(socket, { slow_operator: 0, keyframe_skip: 0 })
  t.equal(sink.start(stream), 'joining', 'mid-stream without a group: joining')
  deliver(stream, sink, published.subarray(2, messages[0]!.length))
  for (const message of messages.slice(1)) deliver(stream, sink, message)
  const received = Buffer.concat(socket.sent)
  const { init } = (() => {
    const event = createScanner('webm').push(published).find((e) => e.type === 'init')
    return { init: event?.type === 'init' ? event.bytes : Buffer.alloc(0) }
  })()
  t.ok(socket.sent[0]!.equals(init), 'it got the init segment first')
  t.ok(published.subarray(published.length - (received.length - init.length)).equals(received.subarray(init.length)), 'then the stream from a keyframe segment to the end')
  t.ok(sink.gotBytes, 'it has bytes of this stream')
  const other = new StandInSocket()
  const idle = sinkOn(other, { slow_operator: 0, keyframe_skip: 0 })
  t.equal(idle.start(new SessionStream()), 'joining', 'on a node that does not follow the stream yet: joining')
  t.notOk(idle.gotBytes, 'without bytes, a new stream can start on the same connection')
})
