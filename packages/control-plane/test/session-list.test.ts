import t from 'tap'
import type { SessionPage } from '@streaming-service/protocol'
import { connected, startCluster, waitFor, type Cluster, type TestSocket } from '@streaming-service/testing'

// SPEC §12: GET /sessions lists sessions newest first with keyset pagination,
// with operators_count and publisher_online, never a stream key.

async function page (cluster: Cluster, query: string): Promise<{ status: number, body: SessionPage & { error?: { code: string } } }> {
  const res = await fetch(`${cluster.controlPlane.url}/sessions?${query}`, { headers: cluster.authHeaders })
  return { status: res.status, body: await res.json() as SessionPage & { error?: { code: string } } }
}

t.test('GET /sessions?status=active pages through 120 live sessions, limit=50, with no gap or repeat while sessions are being created', async (t) => {
  const cluster = await startCluster(t, { relays: 1 })
  const [relay] = cluster.relays
  const publishers: TestSocket[] = []
  const goLive = async () => {
    const session = await cluster.createSession()
    publishers.push(await connected(t, cluster.wsUrl(relay!, session.session_id, session.client_id, session.stream_key)))
    return session
  }
  const live: string[] = []
  for (let i = 0; i < 120; i += 10) live.push(...(await Promise.all(Array.from({ length: 10 }, goLive))).map((s) => s.session_id))
  await cluster.createSession() // waiting: not listed
  const watched = live[7]!
  await connected(t, cluster.wsUrl(relay!, watched, 'op-1'))

  // Creating (and starting) more sessions all along the paging.
  let creating = true
  const created: string[] = []
  const background = (async () => {
    while (creating) created.push((await goLive()).session_id) // eslint-disable-line no-unmodified-loop-condition -- set by the paging below
  })()
  await waitFor('some sessions created while paging starts', () => created.length >= 2, 30_000)

  const seen: string[] = []
  const pages: number[] = []
  let cursor: string | null = null
  do {
    const { status, body } = await page(cluster, `status=active&limit=50${cursor === null ? '' : `&cursor=${cursor}`}`)
    t.equal(status, 200)
    pages.push(body.sessions.length)
    t.ok(body.sessions.every((s) => s.status === 'active' && !('stream_key' in s)), 'only active sessions, never a stream key')
    seen.push(...body.sessions.map((s) => s.session_id))
    cursor = body.next_cursor
    if (created.length < 6) await waitFor('more sessions created between pages', () => created.length >= pages.length * 2 + 2, 30_000)
  } while (cursor !== null)
  creating = false
  await background

  t.equal(new Set(seen).size, seen.length, `no repeats over ${pages.length} pages (${pages.join(', ')})`)
  t.same(live.filter((id) => !seen.includes(id)), [], 'every one of the 120 listed: no gap')
  t.ok(pages.slice(0, -1).every((n) => n === 50), 'full pages of 50 until the last')
  t.ok(seen.every((id) => live.includes(id) || created.includes(id)), 'nothing else')
  t.comment(`${created.length} sessions created during the paging; ${seen.length - 120} of them listed (those newer than the first page are not)`)

  const first = await page(cluster, 'status=active&limit=200')
  const order = first.body.sessions.map((s) => Date.parse(s.created_at))
  t.ok(order.every((at, i) => i === 0 || at <= order[i - 1]!), 'newest first')
  const listed = first.body.sessions.find((s) => s.session_id === watched)!
  t.match(listed, { operators_count: 1, publisher_online: true, status: 'active' }, 'operators_count and publisher_online as GET /sessions/:id has them')
  const single = await (await fetch(`${cluster.controlPlane.url}/sessions/${watched}`)).json()
  t.same(listed, single, 'an item is what GET /sessions/:id returns')
})

t.test('GET /sessions filters by client_id and status, and refuses a bad cursor, status or limit with 400', async (t) => {
  const cluster = await startCluster(t, { relays: 0 })
  const clientId = crypto.randomUUID()
  const mine = [await cluster.createSession(clientId), await cluster.createSession(clientId)]
  await cluster.createSession()
  await fetch(`${cluster.controlPlane.url}/sessions/${mine[0]!.session_id}`, { method: 'DELETE' })

  const all = await page(cluster, `client_id=${clientId}`)
  t.same(all.body.sessions.map((s) => s.session_id), [mine[1]!.session_id, mine[0]!.session_id], 'the client\'s sessions, newest first')
  t.equal(all.body.next_cursor, null, 'one page')
  const finished = await page(cluster, `client_id=${clientId.toUpperCase()}&status=finished`)
  t.same(finished.body.sessions.map((s) => s.session_id), [mine[0]!.session_id], 'and by status')
  t.match(finished.body.sessions[0], { publisher_online: false, finished_at: String })
  const one = await page(cluster, `client_id=${clientId}&limit=1`)
  const next = await page(cluster, `client_id=${clientId}&limit=1&cursor=${one.body.next_cursor!}`)
  t.same([...one.body.sessions, ...next.body.sessions].map((s) => s.session_id), [mine[1]!.session_id, mine[0]!.session_id], 'one at a time')
  t.equal(next.body.next_cursor, null)

  for (const query of ['cursor=nope', `cursor=${Buffer.from('1:x').toString('base64url')}`, 'status=gone', 'limit=0', 'limit=201', 'client_id=nope', 'other=1']) {
    const { status, body } = await page(cluster, query)
    t.equal(status, 400, `${query}: 400`)
    t.match(body, { error: { code: /^invalid_(cursor|body)$/, message: String } })
  }
})
