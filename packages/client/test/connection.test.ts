import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { createTestDatabase, freePort, startService, waitFor, type ServiceProcess } from '@streaming-service/testing'
import type { CloseInfo, ConnectionOptions } from '../src/connection.js'
import { Publisher, type StreamSource } from '../src/publisher.js'
import { streamUrl } from '@streaming-service/protocol'
import { Viewer } from '../src/viewer.js'

// The SDK's reconnect rules against a real service (`api`: control plane and
// relay in one process), with `ws` as the WebSocket implementation.

interface Created { session_id: string, client_id: string, stream_key: string }

const db = await createTestDatabase(t, 'client')
const service = await startService(t, ['api'], db.env)

async function createSession (on: ServiceProcess = service): Promise<Created> {
  const res = await fetch(`${on.url}/sessions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: randomUUID() }),
  })
  if (res.status !== 201) throw new Error(`POST /sessions: ${res.status} ${await res.text()}`)
  return await res.json() as Created
}

const base = (on: ServiceProcess) => `ws://127.0.0.1:${on.port}`

/** Options for the SDK in Node: `ws`, and short delays so tests stay quick. */
function nodeOptions (url: string): ConnectionOptions {
  return { url, WebSocket, backoff: { initialMs: 100, maxMs: 400 } }
}

/** Records every close; stops the client at teardown. */
function track (t: Test, client: Viewer | Publisher): CloseInfo[] {
  const closes: CloseInfo[] = []
  client.connection.on('close', (info) => closes.push(info))
  t.teardown(() => client.stop())
  return closes
}

/** A source that streams `bytes` from the start, `chunkSize` bytes every 20 ms. */
function replay (bytes: Buffer, chunkSize = 2048): StreamSource & { starts: number, stops: number } {
  const source = Object.assign((sink: Parameters<StreamSource>[0]) => {
    source.starts++
    let offset = 0
    const timer = setInterval(() => {
      if (offset >= bytes.length) return
      sink.send(bytes.subarray(offset, offset += chunkSize))
    }, 20)
    return { stop: () => { source.stops++; clearInterval(timer) } }
  }, { starts: 0, stops: 0 })
  return source
}

const silence: StreamSource = () => ({ stop () {} })

t.test('never retries when the request cannot succeed: 4400, 4401, 4404', async (t) => {
  const session = await createSession()
  const cases = [
    { code: 4400, client: new Viewer(nodeOptions(streamUrl({ base: base(service), sessionId: 'not-a-uuid', userId: 'op' }))) },
    { code: 4404, client: new Viewer(nodeOptions(streamUrl({ base: base(service), sessionId: randomUUID(), userId: 'op' }))) },
    {
      code: 4401,
      client: new Publisher({
        ...nodeOptions(streamUrl({ base: base(service), sessionId: session.session_id, userId: session.client_id, streamKey: 'wrong-key' })),
        source: silence,
      }),
    },
  ]
  for (const { code, client } of cases) {
    const closes = track(t, client)
    client.start()
    await waitFor(`the client to stop on ${code}`, () => client.stats.state === 'stopped')
    t.match(closes, [{ code, action: 'stop', retryInMs: null }], `${code}: one close, no retry`)
    t.match(client.stats, { lastCloseCode: code, reconnects: 0 })
  }
})

t.test('a finished session (4410) stops the viewer and the publisher', async (t) => {
  const session = await createSession()
  const viewer = new Viewer(nodeOptions(streamUrl({ base: base(service), sessionId: session.session_id, userId: 'op' })))
  const publisher = new Publisher({
    ...nodeOptions(streamUrl({ base: base(service), sessionId: session.session_id, userId: session.client_id, streamKey: session.stream_key })),
    source: silence,
  })
  const viewerCloses = track(t, viewer)
  const publisherCloses = track(t, publisher)
  viewer.start()
  publisher.start()
  await waitFor('both open', () => viewer.stats.state === 'open' && publisher.stats.state === 'open')
  t.equal((await fetch(`${service.url}/sessions/${session.session_id}`, { method: 'DELETE' })).status, 204)
  await waitFor('both stopped', () => viewer.stats.state === 'stopped' && publisher.stats.state === 'stopped')
  t.match(viewerCloses, [{ code: 4410, action: 'stop' }])
  t.match(publisherCloses, [{ code: 4410, action: 'stop' }])
})

t.test('a replaced publisher (4409) stops; its replacement keeps publishing', async (t) => {
  const session = await createSession()
  const url = streamUrl({ base: base(service), sessionId: session.session_id, userId: session.client_id, streamKey: session.stream_key })
  const first = new Publisher({ ...nodeOptions(url), source: silence })
  const second = new Publisher({ ...nodeOptions(url), source: silence })
  const firstCloses = track(t, first)
  track(t, second)
  first.start()
  await waitFor('the first publisher open', () => first.stats.state === 'open')
  second.start()
  await waitFor('the first publisher stopped', () => first.stats.state === 'stopped')
  t.match(firstCloses, [{ code: 4409, action: 'stop', retryInMs: null }])
  t.equal(second.stats.state, 'open')
})

t.test('a restarted stream (4205): the viewer reconnects at once and gets the new stream from its init segment', async (t) => {
  const webm = Buffer.from((await promisify(execFile)('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=25', '-t', '3',
    '-c:v', 'libvpx', '-deadline', 'realtime', '-g', '10', '-f', 'webm', '-live', '1', 'pipe:1',
  ], { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 })).stdout)
  const session = await createSession()
  const viewer = new Viewer(nodeOptions(streamUrl({ base: base(service), sessionId: session.session_id, userId: 'op' })))
  const streams: Array<{ serial: number, chunks: Buffer[] }> = []
  viewer.on('stream', ({ serial }) => streams.push({ serial, chunks: [] }))
  viewer.on('chunk', ({ data }) => streams.at(-1)!.chunks.push(Buffer.from(data)))
  const viewerCloses = track(t, viewer)
  viewer.start()
  await waitFor('the viewer open', () => viewer.stats.state === 'open')

  const source = replay(webm)
  const publisher = new Publisher({
    ...nodeOptions(streamUrl({ base: base(service), sessionId: session.session_id, userId: session.client_id, streamKey: session.stream_key })),
    source,
  })
  const publisherCloses = track(t, publisher)
  publisher.start()
  await waitFor('media at the viewer', () => Buffer.concat(streams[0]?.chunks ?? []).length > 20_000)
  t.same(Buffer.concat(streams[0]!.chunks).subarray(0, 4), webm.subarray(0, 4), 'the first stream starts with the EBML header')

  publisher.reconnect()
  await waitFor('the second stream at the viewer', () => Buffer.concat(streams[1]?.chunks ?? []).length > 4)
  t.match(viewerCloses, [{ code: 4205, action: 'reconnect-now', retryInMs: 0 }], 'the viewer was told to reconnect, and did at once')
  t.equal(viewer.stats.reconnects, 1)
  t.same(Buffer.concat(streams[1]!.chunks).subarray(0, 4), webm.subarray(0, 4), 'the new stream starts with its init segment')
  t.match(publisherCloses, [{ code: 1000, reason: 'reconnect', action: 'reconnect-now' }], 'the publisher was not told it was replaced')
  t.equal(source.starts, 2, 'the source started afresh for the new connection')
  t.equal(source.stops, 1, 'and the old stream stopped')
})

t.test('draining (1001) and an unreachable node back off with growing delays until the node is back', async (t) => {
  const port = await freePort()
  const env = { ...db.env, HTTP_PORT: String(port), SHUTDOWN_DRAIN: '100ms' }
  const node = await startService(t, ['api'], env)
  const session = await createSession(node)
  const viewer = new Viewer({ ...nodeOptions(streamUrl({ base: base(node), sessionId: session.session_id, userId: 'op' })), random: () => 1 })
  const closes = track(t, viewer)
  viewer.start()
  await waitFor('the viewer open', () => viewer.stats.state === 'open')

  await node.stop('SIGTERM')
  await waitFor('three failed attempts after the drain', () => closes.length >= 4, 10_000)
  t.match(closes[0], { code: 1001, action: 'backoff' }, 'the draining node closes with 1001')
  // Until the node stops listening, an attempt may still be turned away with 1001.
  t.ok(closes.slice(1, 4).every((close) => (close.code === 1006 || close.code === 1001) && close.action === 'backoff'), 'refused connections back off too')
  t.same(closes.slice(0, 4).map((close) => close.retryInMs), [100, 200, 400, 400], 'the delays grow to the maximum')
  t.equal(viewer.stats.state, 'reconnecting')

  await startService(t, ['api'], env)
  await waitFor('the viewer open again', () => viewer.stats.state === 'open', 10_000)
  t.equal(viewer.stats.reconnects, 1)
})
