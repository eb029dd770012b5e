import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { OutgoingMessage, writeMessage } from '../src/frames.js'

// A message framed once and written straight to each TCP socket must reach
// every client exactly as ws.send would deliver it: same bytes, same type,
// in order with what ws itself sends on the socket (close frames included).

async function pair (t: Test): Promise<{ server: WebSocket, client: WebSocket, received: Array<{ data: Buffer, binary: boolean }> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false })
  await once(wss, 'listening')
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false })
  const [server] = await once(wss, 'connection') as [WebSocket]
  await once(client, 'open')
  t.teardown(async () => {
    client.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  const received: Array<{ data: Buffer, binary: boolean }> = []
  client.on('message', (data: Buffer, binary) => received.push({ data, binary }))
  return { server, client, received }
}

async function until (condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve))
}

// Around each length where the header changes size (7-bit, 16-bit, 64-bit length) and the one-buffer limit.
const SIZES = [0, 1, 125, 126, 127, 65_535, 65_536, 65_537, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024]

t.test('the same framed message to two sockets arrives byte-exact, binary and text, in order with ws.send', async (t) => {
  const a = await pair(t)
  const b = await pair(t)
  const sent: Array<{ data: Buffer, binary: boolean }> = []
  for (const [i, size] of SIZES.entries()) {
    const payload = Buffer.alloc(size, i + 1)
    const binary = i % 2 === 0
    // Two sockets: header and payload apart; one buffer from three sockets on.
    const message = new OutgoingMessage(payload, binary, i % 3 === 0 ? 2 : 3)
    writeMessage(a.server, message)
    writeMessage(b.server, message)
    sent.push({ data: payload, binary })
    // ws's own send on the same socket stays in order with ours.
    const between = Buffer.from(`between ${i}`)
    a.server.send(between, { binary: true })
    b.server.send(between, { binary: true })
    sent.push({ data: between, binary: true })
  }
  await until(() => a.received.length === sent.length && b.received.length === sent.length)
  for (const { received } of [a, b]) {
    t.same(received.map(({ data }) => data.length), sent.map(({ data }) => data.length), 'lengths in order')
    t.ok(received.every(({ data, binary }, i) => data.equals(sent[i]!.data) && binary === sent[i]!.binary), 'every byte and type as sent')
  }
})

t.test('written bytes count in bufferedAmount, so an operator\'s bound still sees them', async (t) => {
  const { server, client } = await pair(t)
  client.pause() // the client stops reading: the server's socket buffer fills
  const message = new OutgoingMessage(Buffer.alloc(1024 * 1024), true, 1)
  for (let i = 0; i < 64 && server.bufferedAmount === 0; i++) writeMessage(server, message)
  t.ok(server.bufferedAmount > 0, `bufferedAmount ${server.bufferedAmount} once the kernel's buffers are full`)
  client.resume()
})

t.test('a socket that is closing gets nothing written past its close frame', async (t) => {
  const { server, client, received } = await pair(t)
  writeMessage(server, new OutgoingMessage(Buffer.from('before'), false, 1))
  server.close(1000, 'bye')
  const closed = once(client, 'close')
  t.equal(server.readyState, WebSocket.CLOSING)
  writeMessage(server, new OutgoingMessage(Buffer.from('after'), false, 1))
  const [code] = await closed as [number]
  t.equal(code, 1000)
  t.same(received.map(({ data }) => data.toString()), ['before'])
})
