import { once } from 'node:events'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { WebSocketServer, type WebSocket } from 'ws'

// patches/ws@8.23.0.patch: the server's receiver copies a data message of
// 1 MB or more into its buffer as the bytes arrive. Raw client frames, masked
// and cut at arbitrary points, must still come out byte for byte: one frame
// or fragments, fragments crossing the threshold midway, a ping between
// fragments, text, and maxPayload still enforced.

const MB = 1024 * 1024

interface Received { data: Buffer, binary: boolean }

/** A client frame (masked, as clients must) with `payload`. */
function frame (opcode: number, fin: boolean, payload: Buffer): Buffer {
  const length = payload.length
  const head = length < 126 ? Buffer.alloc(2) : length < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
  head[0] = (fin ? 0x80 : 0) | opcode
  if (length < 126) head[1] = 0x80 | length
  else if (length < 65536) head.writeUInt16BE(length, 2)
  else head.writeBigUInt64BE(BigInt(length), 2)
  if (length >= 126) head[1] = 0x80 | (length < 65536 ? 126 : 127)
  const mask = randomBytes(4)
  const masked = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) masked[i] = payload[i]! ^ mask[i & 3]!
  return Buffer.concat([head, mask, masked])
}

/** A message as frames of at most `fragment` bytes (one frame when it fits). */
function message (payload: Buffer, fragment: number, opcode = 2): Buffer[] {
  const frames: Buffer[] = []
  for (let offset = 0; offset < payload.length || frames.length === 0; offset += fragment) {
    const end = Math.min(payload.length, offset + fragment)
    frames.push(frame(frames.length === 0 ? opcode : 0, end === payload.length, payload.subarray(offset, end)))
  }
  return frames
}

interface RawPeer { socket: Socket, received: Received[], errors: string[], closed: Promise<void>, closeCode: () => number | undefined, pongs: () => number }

/** A ws server and a raw TCP client that has done the opening handshake. */
async function rawPeer (t: Test, maxPayload: number): Promise<RawPeer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload })
  await once(wss, 'listening')
  t.teardown(async () => await new Promise((resolve) => wss.close(resolve)))
  const received: Received[] = []
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>
  const socket = connect((wss.address() as AddressInfo).port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  await once(socket, 'connect')
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  const [server] = await accepted
  server.on('message', (data: Buffer, binary: boolean) => received.push({ data, binary }))
  const errors: string[] = []
  server.on('error', (err: Error & { code?: string }) => errors.push(err.code ?? err.message))
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()))
  let pongs = 0
  let closeCode: number | undefined
  let response = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    response = Buffer.concat([response, chunk])
    const start = response.indexOf('\r\n\r\n')
    if (start === -1) return
    // Server frames after the handshake (all short here): count pongs (opcode 0xA), keep the close code (0x8).
    for (let i = start + 4; i + 1 < response.length; i += 2 + (response[i + 1]! & 0x7f)) {
      if ((response[i]! & 0x0f) === 0x0a) pongs++
      if ((response[i]! & 0x0f) === 0x08 && i + 3 < response.length) closeCode = response.readUInt16BE(i + 2)
    }
    response = response.subarray(0, start + 4)
  })
  return { socket, received, errors, closed, closeCode: () => closeCode, pongs: () => pongs }
}

/** Writes `bytes` in pieces of random length (1 byte to 200 KB), yielding to the event loop between them. */
async function writeInPieces (socket: Socket, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length;) {
    const size = Math.random() < 0.2 ? 1 + Math.floor(Math.random() * 16) : 1 + Math.floor(Math.random() * 200 * 1024)
    const piece = bytes.subarray(offset, offset + size)
    offset += piece.length
    if (!socket.write(piece)) await once(socket, 'drain')
    else await new Promise((resolve) => setImmediate(resolve))
  }
}

async function until (what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

t.test('messages from 1 MB on, in one frame or in fragments cut anywhere, arrive byte for byte and in order', async (t) => {
  const peer = await rawPeer(t, 16 * MB)
  const payloads = [
    { name: '3 MB in one frame', data: randomBytes(3 * MB), fragment: 3 * MB },
    { name: 'a small message after it', data: randomBytes(1000), fragment: 1000 },
    { name: '5 MB in 700 KB fragments (the threshold crossed at the second)', data: randomBytes(5 * MB), fragment: 700 * 1024 },
    { name: 'exactly 1 MB', data: randomBytes(MB), fragment: MB },
    { name: '2 MB in 1-byte-short-of-1 MB fragments', data: randomBytes(2 * MB), fragment: MB - 1 },
    { name: 'just under 1 MB', data: randomBytes(MB - 1), fragment: MB },
  ]
  await writeInPieces(peer.socket, Buffer.concat(payloads.flatMap(({ data, fragment }) => message(data, fragment))))
  await until('every message', () => peer.received.length === payloads.length)
  for (const [i, { name, data }] of payloads.entries()) {
    t.ok(peer.received[i]!.binary && peer.received[i]!.data.equals(data), name)
  }
  const assembled = peer.received[2]!.data.buffer as ArrayBuffer & { resizable?: boolean }
  t.ok(assembled.resizable === true && assembled.byteLength === 5 * MB, 'the fragmented one was assembled in a buffer that grew to its size (the patch is applied)')
})

t.test('a ping between the fragments of a large message is answered, and the message is intact', async (t) => {
  const peer = await rawPeer(t, 16 * MB)
  const data = randomBytes(4 * MB)
  const frames = message(data, 1536 * 1024)
  await writeInPieces(peer.socket, Buffer.concat([frames[0]!, frames[1]!, frame(0x9, true, Buffer.from('ping')), ...frames.slice(2)]))
  await until('the message', () => peer.received.length === 1)
  t.ok(peer.received[0]!.data.equals(data), `${frames.length} fragments with a ping after the second: byte for byte`)
  await until('the pong', () => peer.pongs() === 1)
  t.pass('the ping was answered')
})

t.test('a large text message in fragments arrives as the same text', async (t) => {
  const peer = await rawPeer(t, 16 * MB)
  const text = 'жизненный цикл сессий '.repeat(100_000)
  await writeInPieces(peer.socket, Buffer.concat(message(Buffer.from(text), 512 * 1024, 1)))
  await until('the message', () => peer.received.length === 1)
  t.equal(peer.received[0]!.binary, false, 'a text message')
  t.ok(peer.received[0]!.data.toString() === text, `${Buffer.byteLength(text)} bytes of UTF-8, the same text`)
})

t.test('maxPayload still holds for a message assembled from fragments: 1009', async (t) => {
  const peer = await rawPeer(t, 3 * MB)
  await writeInPieces(peer.socket, Buffer.concat(message(randomBytes(2 * MB), MB)))
  await until('the first message', () => peer.received.length === 1)
  t.pass('2 MB in 1 MB fragments under a 3 MB maxPayload: delivered')
  peer.socket.write(Buffer.concat(message(randomBytes(4 * MB), MB)))
  await peer.closed
  await until('the close frame', () => peer.closeCode() !== undefined)
  t.equal(peer.closeCode(), 1009, '4 MB in 1 MB fragments: closed with 1009')
  t.same(peer.errors, ['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'], 'ws reports the message as too long')
  t.equal(peer.received.length, 1, 'nothing of it delivered')
})

t.test('without a maxPayload, large fragmented messages still arrive whole', async (t) => {
  const peer = await rawPeer(t, 0)
  const data = randomBytes(3 * MB)
  await writeInPieces(peer.socket, Buffer.concat(message(data, MB)))
  await until('the message', () => peer.received.length === 1)
  t.ok(peer.received[0]!.data.equals(data), 'byte for byte')
})
