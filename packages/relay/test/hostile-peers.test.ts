import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import { CloseCode, isKnownCloseCode, streamUrl, type CreatedSession } from '@streaming-service/protocol'
import { connected, createTestDatabase, metric, openSocket, startService, waitFor, type ServiceProcess } from '@streaming-service/testing'

// SPEC §10 limits a client chooses against: operators only receive, a node
// caps its sockets, and peer-chosen close codes do not become metric series.

const db = await createTestDatabase(t, 'hostile_peers')
const relay = await startService(t, ['api'], {
  ...db.env, SESSION_MAX_OPERATORS: '100', WS_MAX_CONNECTIONS: '6', WS_OPERATOR_MAX_MESSAGE: '4KB', WS_MAX_MESSAGE_SIZE: '3MB', SHUTDOWN_DRAIN: '0ms',
})

async function createSession (service: ServiceProcess): Promise<CreatedSession> {
  const res = await fetch(`${service.url}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ client_id: randomUUID() }) })
  if (res.status !== 201) throw new Error(`POST /sessions: ${res.status}`)
  return await res.json() as CreatedSession
}

const base = relay.url.replace(/^http/, 'ws')
const operatorUrl = (session: CreatedSession, userId: string) => streamUrl({ base, sessionId: session.session_id, userId })
const publisherUrl = (session: CreatedSession) => streamUrl({ base, sessionId: session.session_id, userId: session.client_id, streamKey: session.stream_key })

t.test('an operator sending more than WS_OPERATOR_MAX_MESSAGE is closed with 1009; the publisher may still send up to WS_MAX_MESSAGE_SIZE', async (t) => {
  const session = await createSession(relay)
  const publisher = await connected(t, publisherUrl(session))
  const chatty = await connected(t, operatorUrl(session, 'chatty'))
  const watcher = await connected(t, operatorUrl(session, 'watcher'))
  await chatty.send('a small control message is fine')
  chatty.socket.send(randomBytes(2 * 1024 * 1024))
  t.equal((await chatty.closed).code, CloseCode.tooLarge, 'the 2 MB operator message closes its socket with 1009')

  // Refused from its header, before the relay holds its bytes: only the
  // header of a 2 MB frame is sent, and the close comes anyway.
  const declaring = await connected(t, operatorUrl(session, 'declaring'))
  const header = Buffer.alloc(14)
  header[0] = 0x82 // FIN, binary
  header[1] = 0x80 | 127 // masked, 64-bit length follows
  header.writeBigUInt64BE(2n * 1024n * 1024n, 2)
  randomBytes(4).copy(header, 10)
  ;(declaring.socket as unknown as { _socket: { write: (bytes: Buffer) => void } })._socket.write(Buffer.concat([header, randomBytes(100)]))
  const refused = await Promise.race([declaring.closed, new Promise<undefined>((resolve) => setTimeout(resolve, 5000, undefined))])
  t.equal(refused?.code, CloseCode.tooLarge, 'a frame declaring 2 MB is refused before its payload arrives')

  const big = randomBytes(2 * 1024 * 1024)
  await publisher.send(big)
  const [got] = await watcher.waitForMessages(1)
  t.ok(got!.data.equals(big), 'a 2 MB publisher message is relayed')
  t.equal(publisher.socket.readyState, publisher.socket.OPEN)
})

t.test('a node at WS_MAX_CONNECTIONS closes the next socket with 1013; once one leaves, a new one is admitted', async (t) => {
  const session = await createSession(relay)
  await waitFor('the earlier test\'s sockets to be gone', async () => await metric(relay, 'relay_connections') === 0)
  const open = await Promise.all(Array.from({ length: 6 }, async (_, i) => await connected(t, operatorUrl(session, `op-${i}`))))
  const refused = openSocket(t, operatorUrl(session, 'one-too-many'))
  const closed = await refused.closed
  t.equal(closed.code, CloseCode.tryAgainLater, 'the seventh socket is told to try again later')
  t.match(closed.reason, /connection limit/)
  await open[0]!.close()
  await waitFor('the closed socket to be counted out', async () => await metric(relay, 'relay_connections') === 5)
  const admitted = await connected(t, operatorUrl(session, 'later'))
  t.equal(admitted.socket.readyState, admitted.socket.OPEN, 'admitted again below the limit')
  for (const socket of [...open.slice(1), admitted]) await socket.close()
})

t.test('40 client-chosen close codes make at most 20 label values of relay_disconnects_total', async (t) => {
  const session = await createSession(relay)
  const codes = [...Array.from({ length: 20 }, (_, i) => 3000 + i * 37), ...Array.from({ length: 20 }, (_, i) => 4001 + i * 41)]
  t.equal(codes.filter((code) => isKnownCloseCode(code)).length, 0, 'none of them is in the table')
  for (const code of codes) {
    const socket = await connected(t, operatorUrl(session, `closer-${code}`))
    await socket.close(code)
  }
  await waitFor('the closes to be counted', async () => await metric(relay, 'relay_disconnects_total', { role: 'operator', code: 'other' }) >= codes.length)
  const text = await (await fetch(`${relay.url}/metrics`)).text()
  const labels = new Set([...text.matchAll(/^relay_disconnects_total\{[^}]*code="([^"]*)"/gm)].map((match) => match[1]))
  t.ok(labels.size <= 20, `${labels.size} code label values: ${[...labels].join(', ')}`)
  t.ok(labels.has('other'), 'codes outside the table are counted as other')
})
