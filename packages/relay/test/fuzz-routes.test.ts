import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { streamUrl, type CreatedSession } from '@streaming-service/protocol'
import { createTestDatabase, prng, rssBytes, startService } from '@streaming-service/testing'

// SPEC §10 fuzzing of what a client sends over HTTP: generated hostile
// requests at the REST API and at the stream route (paths, methods, headers,
// bodies, WebSocket frames). Whatever comes, the answer is an error in the
// SPEC §3 shape (or a close code), the process never dies, answers stay
// fast and memory stays bounded. Seeded: a failure names its seed.

const SEED = Number(process.env.FUZZ_SEED ?? 20261202)
const db = await createTestDatabase(t, 'fuzz_routes')
const service = await startService(t, ['api'], { ...db.env, WS_MAX_MESSAGE_SIZE: '256KB', SHUTDOWN_DRAIN: '0ms' })
const session = await (await fetch(`${service.url}/sessions`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: randomUUID() }),
})).json() as CreatedSession

/** One raw HTTP exchange: what the server answers until it closes (a 101 answer: its head), or '' when it only closed. */
async function raw (request: Buffer | string, timeoutMs = 5000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect(service.port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
    socket.on('data', (chunk) => {
      chunks.push(chunk)
      // An upgraded connection stays open: its status line and headers are the answer.
      const text = Buffer.concat(chunks).toString('latin1')
      if (text.startsWith('HTTP/1.1 101') && text.includes('\r\n\r\n')) socket.destroy()
    })
    socket.on('error', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')) })
    // Not end(): a client that half-closes before the answer may be dropped unanswered, as Node's server does.
    socket.write(request)
  })
}

/** The JSON body of a raw HTTP answer (after the blank line; chunked bodies unwrapped). */
function jsonBody (answer: string): unknown {
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4)
  const chunked = /transfer-encoding: chunked/i.test(answer.slice(0, answer.indexOf('\r\n\r\n')))
  const text = chunked ? body.split('\r\n').filter((_, i) => i % 2 === 1).join('') : body
  return JSON.parse(text)
}

function pick<T> (random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!
}

function junk (random: () => number, length: number, alphabet?: string): string {
  let text = ''
  for (let i = 0; i < length; i++) text += alphabet === undefined ? String.fromCharCode(Math.floor(random() * 256)) : alphabet[Math.floor(random() * alphabet.length)]
  return text
}

const PATH_PARTS = ['sessions', session.session_id, randomUUID(), 'operators', 'tokens', 'ws', 'stream', '..', '.', '%2e%2e', '%E2%98', '%', '%00', '%ff', 'a'.repeat(300), '🎥', '?', '#', ';', '*']
const METHODS = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'CONNECT', 'FOO', 'G\u00e9T']
const BODIES = [
  () => '', () => '{', () => '[]', () => 'null', () => '{"client_id":null}', () => '{"client_id":"' + 'x'.repeat(70_000) + '"}',
  () => '['.repeat(10_000) + ']'.repeat(10_000), () => '{"a":'.repeat(5000) + '1' + '}'.repeat(5000), () => '{"__proto__":{"x":1},"client_id":"' + randomUUID() + '"}',
]

t.test(`REST fuzz (seed ${SEED}): 400 generated requests get an answer in the SPEC §3 error shape or a success, fast, and the process lives`, async (t) => {
  const random = prng(SEED)
  const rssBefore = rssBytes(service.child.pid!)
  let slowest = 0
  const statuses = new Map<number, number>()
  for (let i = 0; i < 400; i++) {
    const path = '/' + Array.from({ length: 1 + Math.floor(random() * 5) }, () => pick(random, PATH_PARTS)).join('/') + (random() < 0.3 ? `?${junk(random, 20, 'ab=&%;')}` : '')
    const method = pick(random, METHODS)
    const body = random() < 0.5 ? pick(random, BODIES)() : ''
    const headers = [
      `Host: 127.0.0.1:${service.port}`,
      ...(body === '' ? [] : [`Content-Type: ${pick(random, ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', junk(random, 10)])}`, `Content-Length: ${Buffer.byteLength(body)}`]),
      ...(random() < 0.2 ? [`X-Request-Id: ${junk(random, 100)}`] : []),
      ...(random() < 0.2 ? [`Authorization: Bearer ${junk(random, 40)}`] : []),
      'Connection: close',
    ]
    const started = Date.now()
    const answer = await raw(`${method} ${path} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n${body}`)
    slowest = Math.max(slowest, Date.now() - started)
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])
    if (!Number.isInteger(status)) {
      t.fail(`request ${i} (seed ${SEED}): no HTTP answer to ${method} ${path.slice(0, 80)}: ${JSON.stringify(answer.slice(0, 100))}`)
      continue
    }
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
    if (status >= 400 && method !== 'HEAD') {
      const shaped = (() => { try { return jsonBody(answer) } catch { return undefined } })() as { error?: { code?: unknown, message?: unknown } } | undefined
      if (typeof shaped?.error?.code !== 'string' || typeof shaped.error.message !== 'string') {
        t.fail(`request ${i} (seed ${SEED}): ${method} ${path.slice(0, 80)} → ${status} not in the error shape: ${JSON.stringify(answer.slice(0, 200))}`)
      }
    }
    // 501: a method the server implements for no resource (RFC 9110); 503: the database, briefly.
    if (status >= 500 && status !== 501 && status !== 503) t.fail(`request ${i} (seed ${SEED}): ${method} ${path.slice(0, 80)} → ${status}`)
  }
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}, slowest ${slowest} ms`)
  t.equal((await fetch(`${service.url}/health`)).status, 200, 'the process lives')
  t.ok(slowest < 2000, `slowest answer ${slowest} ms`)
  t.ok(rssBytes(service.child.pid!) - rssBefore < 64 * 1024 * 1024, `RSS grew by ${((rssBytes(service.child.pid!) - rssBefore) / 2 ** 20).toFixed(1)} MB`)
})

/** A masked client frame with any opcode and flags (ws would refuse to build most of these). */
function frame (opcode: number, payload: Buffer, options: { fin?: boolean, rsv?: number, declaredLength?: number } = {}): Buffer {
  const length = options.declaredLength ?? payload.length
  const head = [((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode]
  const size = length < 126 ? [0x80 | length] : length < 65536 ? [0x80 | 126, length >> 8, length & 0xff] : [0x80 | 127, 0, 0, 0, 0, (length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!))
  return Buffer.concat([Buffer.from(head), Buffer.from(size), mask, masked])
}

t.test(`stream route fuzz (seed ${SEED}): hostile upgrades and frames are refused with a close code or an HTTP error; nobody else is disturbed`, async (t) => {
  const random = prng(SEED + 1)
  const base = service.url.replace(/^http/, 'ws')
  const watcher = new WebSocket(streamUrl({ base, sessionId: session.session_id, userId: 'watcher' }))
  const got: Buffer[] = []
  watcher.on('message', (data: Buffer) => got.push(data))
  await new Promise((resolve, reject) => { watcher.once('open', resolve); watcher.once('error', reject) })
  t.teardown(() => watcher.terminate())
  const publisher = new WebSocket(streamUrl({ base, sessionId: session.session_id, userId: session.client_id, streamKey: session.stream_key }))
  await new Promise((resolve, reject) => { publisher.once('open', resolve); publisher.once('error', reject) })
  t.teardown(() => publisher.terminate())

  // Hostile upgrade requests: odd paths, keys, versions, query strings.
  for (let i = 0; i < 60; i++) {
    const path = `/ws/stream/${pick(random, [session.session_id, 'x', '%E2%98', 'a'.repeat(300), randomUUID()])}/${pick(random, ['op', session.client_id, '%00', 'b'.repeat(200), '🎥'])}?${pick(random, ['stream_key=' + junk(random, 40), 'token=' + junk(random, 200, 'abc.'), junk(random, 50)])}`
    const request = [
      `GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${service.port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${pick(random, ['dGhlIHNhbXBsZSBub25jZQ==', '', junk(random, 24, 'abc')])}`, `Sec-WebSocket-Version: ${pick(random, ['13', '8', 'x'])}`, '', '',
    ].join('\r\n')
    const answer = await raw(request).catch((err: Error) => `${err.message}: ${request}`)
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])
    if (status === 101) continue
    const shaped = status >= 400 && status < 500 && (() => { try { return typeof (jsonBody(answer) as { error?: { code?: unknown } }).error?.code === 'string' } catch { return false } })()
    if (!shaped) t.fail(`upgrade ${i} (seed ${SEED + 1}): ${JSON.stringify(answer.slice(0, 300))} to ${JSON.stringify(request.slice(0, 200))}`)
  }

  // Operators sending frames a browser never would: the socket closes, with a protocol error code.
  const codes = new Map<number, number>()
  for (let i = 0; i < 60; i++) {
    const operator = new WebSocket(streamUrl({ base, sessionId: session.session_id, userId: `fuzzer-${i % 5}` }))
    await new Promise((resolve, reject) => { operator.once('open', resolve); operator.once('error', reject) })
    const closed = new Promise<number>((resolve) => operator.once('close', resolve))
    const tcp = (operator as unknown as { _socket: { write: (bytes: Buffer) => void } })._socket
    const kind = Math.floor(random() * 6)
    if (kind === 0) tcp.write(frame(pick(random, [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]), Buffer.alloc(4))) // reserved opcodes
    else if (kind === 1) tcp.write(frame(0x1, Buffer.from([0xc3, 0x28, 0xff, 0xfe]))) // invalid UTF-8 text
    else if (kind === 2) tcp.write(frame(0x9, Buffer.alloc(200))) // a ping larger than 125 bytes
    else if (kind === 3) tcp.write(frame(0x2, Buffer.alloc(8), { rsv: 1 + Math.floor(random() * 7) })) // RSV bits without an extension
    else if (kind === 4) tcp.write(frame(0x0, Buffer.alloc(8))) // a continuation with nothing to continue
    else tcp.write(frame(0x2, Buffer.alloc(16), { declaredLength: 2 ** 31 })) // a huge declared length
    const code = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(resolve, 5000, -1))])
    codes.set(code, (codes.get(code) ?? 0) + 1)
    if (code === -1) t.fail(`frame ${i} (seed ${SEED + 1}), kind ${kind}: the socket was not closed within 5 s`)
    operator.terminate()
  }
  t.comment(`close codes seen: ${JSON.stringify(Object.fromEntries(codes))}`)

  publisher.send('still flowing')
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the watcher got nothing')), 5000)
    watcher.on('message', () => { clearTimeout(timer); resolve() })
  })
  t.ok(got.some((data) => data.toString() === 'still flowing'), 'the session\'s stream kept flowing to its operator')
  t.equal((await fetch(`${service.url}/health`)).status, 200, 'the process lives')
})
