import t from 'tap'
import { CloseCode } from '@streaming-service/protocol'
import { connected, metric, startCluster, startService, waitFor } from '@streaming-service/testing'

// SPEC §10: sessions do not live forever. With two control planes running, a
// session that never became active is finished after SESSION_IDLE_TTL (its
// waiting operators are closed with 4410), one that did stays, and finished
// sessions are deleted after SESSION_RETENTION.

const env = { SESSION_IDLE_TTL: '2s', SESSION_RETENTION: '3s', SESSION_SWEEP_INTERVAL: '200ms' }

t.test('two control planes: idle sessions finished after the TTL, finished ones deleted after the retention, no sweep fails', async (t) => {
  const cluster = await startCluster(t, { relays: 1, env })
  const second = await startService(t, ['control-plane'], cluster.env)
  const [relay] = cluster.relays
  const controlPlanes = [cluster.controlPlane, second]
  const status = async (id: string): Promise<number | string> => {
    const res = await fetch(`${second.url}/sessions/${id}`)
    return res.status === 200 ? (await res.json() as { status: string }).status : res.status
  }

  const idle = await cluster.createSession()
  const waitingOperator = await connected(t, cluster.wsUrl(relay!, idle.session_id, 'op-1'))
  const live = await cluster.createSession()
  const publisher = await connected(t, cluster.wsUrl(relay!, live.session_id, live.client_id, live.stream_key))
  await waitFor('the live session to be active', async () => await status(live.session_id) === 'active')

  const closed = await waitingOperator.closed
  t.equal(closed.code, CloseCode.finished, 'the idle session\'s operator is closed with 4410')
  t.equal(await status(idle.session_id), 'finished', 'the session that never became active is finished')
  const finishedAt = Date.now()
  const events = await (await fetch(`${second.url}/sessions/${idle.session_id}/events`)).json() as { events: Array<{ type: string, data: unknown }> }
  t.same(events.events.filter((event) => event.type === 'session.finished').map((event) => event.data), [{ reason: 'idle' }], 'with one session.finished event, reason idle')

  await waitFor('the finished session to be deleted', async () => await status(idle.session_id) === 404, 15_000)
  t.ok(Date.now() - finishedAt >= 2500, `deleted ${Date.now() - finishedAt} ms after it finished (retention 3 s)`)
  t.equal(await status(live.session_id), 'active', 'the active session is untouched')
  t.equal(publisher.socket.readyState, publisher.socket.OPEN)

  for (const controlPlane of controlPlanes) {
    t.equal(await metric(controlPlane, 'sessions', { status: 'active' }), 1, `${controlPlane.url}: sessions{status="active"}`)
    t.equal(await metric(controlPlane, 'sessions', { status: 'finished' }), 0, 'the deleted session is not counted')
    t.notOk(controlPlane.logs.some((line) => line.msg === 'session sweep failed; trying again at the next interval'), 'no sweep failed')
  }
  const swept = controlPlanes.flatMap((cp) => cp.logs.filter((line) => line.msg === 'finished sessions that never became active'))
  t.equal(swept.reduce((sum, line) => sum + (line.sessions as number), 0), 1, 'the idle session was finished by one of the two, once')
})
