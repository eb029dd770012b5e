// tap: run alone
// (it asserts time to first frame and glass-to-glass latency bounds; Chromium decoding next to the parallel suite is not what it measures)
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Page } from 'playwright-core'
import { startCluster, waitFor, type Cluster, type ServiceProcess } from '@streaming-service/testing'
import { launch, openPage, playsOn, screenshots, snapshot, viewerState, waitForText, type ConsoleWindow } from './browser.js'

// The console in Debian's Chromium (never a downloaded browser): publisher on
// relay A with the test pattern, viewer on relay B joining 5 s later, glass-to-
// glass latency read back from the pattern, recovery after the publisher
// reconnects; then AUTH_MODE=token: the API key asked for after a 401, a
// minted watch link played without it, links that never publish by
// themselves, and /docs. One file, so one Chromium at a time.

/** Latency samples taken during the next `ms`. */
async function latencyOver (page: Page, ms: number): Promise<number[]> {
  const from = Date.now()
  await waitFor(`${ms} ms of latency samples`, async () => (await viewerState(page)).latency.some(([at]) => at >= from + ms), ms + 10_000, 200)
  return (await viewerState(page)).latency.filter(([at]) => at >= from && at < from + ms).map(([, latency]) => latency)
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

t.test('console: a viewer on relay B plays the test pattern published on relay A, at low latency, and recovers after the publisher reconnects', async (t) => {
  const context = await launch(t)
  const cluster = await startCluster(t, { relays: 2 })
  const [relayA, relayB] = cluster.relays as [typeof cluster.relays[0], typeof cluster.relays[0]]
  const api = encodeURIComponent(cluster.controlPlane.url)

  // The publisher creates the session in the console (REST, cross-origin to the control plane) and publishes the test pattern.
  const publisher = await openPage(t, context, 'publisher', { width: 1280, height: 800 })
  await publisher.goto(`${relayA.url}/?api=${api}`)
  await publisher.click('#create-form button')
  await waitForText(publisher, 'stream-key', (key) => key !== '')
  const sessionId = await publisher.inputValue('#session-id')
  await publisher.selectOption('#publish-source', 'pattern')
  await publisher.click('#publish-start')
  await waitFor('the publisher to stream', async () => ((await snapshot(publisher)).publisher?.bytes ?? 0) > 0, 20_000)
  await waitForText(publisher, 'session-status', (status) => status.includes('active'))
  await waitFor('5 s of publishing', async () => {
    const openedAt = (await snapshot(publisher)).publisher?.openedAt ?? null
    return openedAt !== null && Date.now() - openedAt >= 5000
  }, 20_000, 100)

  // The viewer on a phone-sized screen.
  const viewer = await openPage(t, context, 'viewer', { width: 375, height: 812 })
  const joinedAt = Date.now()
  await viewer.goto(`${relayB.url}/?api=${api}&session=${sessionId}&watch=1&user=e2e-operator`)
  await waitFor('the first frame', async () => (await viewerState(viewer)).firstFrameAt !== null, 15_000)
  await playsOn(viewer)
  const joined = await viewerState(viewer)
  // From opening the page (same clock as the page's), and from the viewer's start in the page.
  const timeToFirstFrame = joined.firstFrameAt! - joinedAt
  const inPage = joined.firstFrameAt! - joined.startedAt
  t.ok(joined.videoWidth > 0, `video ${joined.videoWidth}x${joined.videoHeight}`)
  t.ok(timeToFirstFrame < 1500, `first frame ${timeToFirstFrame} ms after opening the viewer (< 1500 ms; ${inPage} ms after it started watching)`)

  await waitForText(viewer, 'operators', (operators) => operators.includes('e2e-operator · online'))

  const latency = await latencyOver(viewer, 6000)
  t.ok(latency.length >= 20, `${latency.length} latency samples read from the pattern`)
  const median = percentile(latency, 0.5)
  const p95 = percentile(latency, 0.95)
  t.ok(median < 1500, `glass-to-glass latency median ${median} ms (< 1500 ms), p95 ${p95} ms`)

  const before = await viewerState(viewer)
  const reconnectedAt = Date.now()
  await publisher.evaluate(() => { (globalThis as unknown as ConsoleWindow).streamingConsole.reconnectPublisher() })
  await waitFor('the viewer to play the new stream', async () => {
    const now = await viewerState(viewer)
    return now.opens > before.opens && now.streamFirstFrameAt !== null && now.streamFirstFrameAt > reconnectedAt
  }, 20_000)
  await playsOn(viewer)
  const recovered = await viewerState(viewer)
  const recovery = recovered.streamFirstFrameAt! - reconnectedAt
  t.equal(recovered.lastCloseCode, 4205, `the viewer was told the stream restarted (${recovered.lastCloseCode} ${recovered.lastCloseReason})`)
  t.ok(recovered.playerResets > before.playerResets, 'the viewer started a new MediaSource')
  t.equal((await snapshot(publisher)).publisher?.reconnects, 1, 'the publisher reconnected once')
  const latencyAfter = await latencyOver(viewer, 3000)
  const medianAfter = latencyAfter.length === 0 ? Number.NaN : percentile(latencyAfter, 0.5)
  t.ok(medianAfter < 1500, `latency median after recovery ${medianAfter} ms (< 1500 ms)`)

  // SPEC §12: an operator opens the console without a link, picks the session from the live list and watches it.
  const picker = await openPage(t, context, 'picker', { width: 1280, height: 800 })
  await picker.goto(`${relayB.url}/?api=${api}&user=picking-operator`)
  const listed = picker.locator(`#live-sessions li[data-session-id="${sessionId}"]`)
  await listed.waitFor({ timeout: 15_000 })
  t.match(await listed.textContent(), /publisher online/, 'the live list shows the session with its publisher online')
  await listed.locator('button').click()
  t.equal(await picker.inputValue('#session-id'), sessionId, 'picking it fills the session')
  await waitFor('the picked session to play', async () => (await viewerState(picker)).firstFrameAt !== null, 15_000)
  await playsOn(picker)

  t.comment(`screenshots: ${(await screenshots({ 'console-viewer': viewer, 'console-publisher': publisher, 'console-picker': picker })).join(' ')}`)
  t.comment(`time to first frame ${timeToFirstFrame} ms (${inPage} ms in the page); latency median ${median} ms, p95 ${p95} ms (${latency.length} samples over 6 s); ` +
    `recovery after publisher reconnect ${recovery} ms; latency median after recovery ${medianAfter} ms`)
})

const API_KEY = `console-test-key-${randomUUID()}`
let tokenMode: Promise<Cluster> | undefined
/** One token-mode cluster for the tests below, stopped when the file ends. */
const tokenCluster = async (): Promise<Cluster> => await (tokenMode ??= startCluster(t, {
  relays: 2, env: { AUTH_MODE: 'token', API_KEYS: API_KEY, AUTH_JWT_SECRET: `console-test-secret-${randomUUID()}` },
}))

const wsOf = (relay: ServiceProcess) => `ws://127.0.0.1:${relay.port}`
const withOrigin = (href: string, relay: ServiceProcess) => { const url = new URL(href); return `${relay.url}${url.pathname}${url.search}${url.hash}` }

/** How many entries the page keeps in its sessionStorage. */
async function storedKeys (page: Page): Promise<number> {
  return await page.evaluate(() => (globalThis as unknown as { sessionStorage: { length: number } }).sessionStorage.length)
}

/** Publishers connected to `relay`, from its metrics. */
async function publishersOn (relay: ServiceProcess): Promise<number> {
  const metrics = await (await fetch(`${relay.url}/metrics`)).text()
  return Number(/^relay_connections\{role="publisher"\} (\d+)/m.exec(metrics)?.[1] ?? 0)
}

t.test('console, AUTH_MODE=token: a 401 asks for the API key; with it the page creates a session and publishes; a minted watch link plays on relay B without the key', async (t) => {
  const context = await launch(t)
  const cluster = await tokenCluster()
  const [relayA, relayB] = cluster.relays as [ServiceProcess, ServiceProcess]

  const publisher = await openPage(t, context, 'token publisher', { width: 1280, height: 900 })
  await publisher.goto(`${relayA.url}/?api=${encodeURIComponent(cluster.controlPlane.url)}`)
  t.notOk(await publisher.isVisible('#api-key-form'), 'no key is asked for before the service asks')
  await publisher.click('#create-form button')
  await publisher.waitForSelector('#api-key-form', { state: 'visible' })
  t.equal(await publisher.textContent('#api-key-target'), new URL(cluster.controlPlane.url).origin, 'the prompt names where the key goes')
  await publisher.fill('#api-key', API_KEY)
  await publisher.click('#api-key-form button')
  await waitForText(publisher, 'stream-key', (key) => key !== '')
  t.notOk(await publisher.isVisible('#api-key-form'), 'the prompt is gone once the key works')
  t.notOk(publisher.url().includes(API_KEY), 'the API key is not in the page URL')
  t.equal(await storedKeys(publisher), 1, 'it is kept in sessionStorage')

  await publisher.selectOption('#publish-source', 'pattern')
  await publisher.click('#publish-start')
  await waitFor('the publisher to stream', async () => ((await snapshot(publisher)).publisher?.bytes ?? 0) > 0, 20_000)
  await waitForText(publisher, 'session-status', (status) => status.includes('active'))

  await publisher.fill('#mint-user', 'e2e-token-operator')
  await publisher.click('#mint-form button')
  const link = await (await publisher.waitForSelector('#minted-link a')).getAttribute('href')
  if (link === null) throw new Error('the watch link has no href')
  const { searchParams, hash } = new URL(link)
  const token = new URLSearchParams(hash.slice(1)).get('token')
  t.ok(token !== null && token.split('.').length === 3, 'the link carries a JWT in its fragment')
  t.notOk(searchParams.has('token') || link.includes(API_KEY), 'no token in the query, no API key anywhere')

  const viewer = await openPage(t, context, 'token viewer', { width: 375, height: 812 })
  const openedAt = Date.now()
  await viewer.goto(withOrigin(link, relayB))
  await waitFor('the first frame', async () => (await viewerState(viewer)).firstFrameAt !== null, 15_000)
  await playsOn(viewer)
  const watched = await viewerState(viewer)
  t.equal(watched.relay, wsOf(relayB), 'watched from the page\'s own relay')
  t.equal(await storedKeys(viewer), 0, 'the viewer has no API key')
  await waitForText(publisher, 'operators', (operators) => operators.includes('e2e-token-operator · online'))

  const logs = JSON.stringify([cluster.controlPlane, relayA, relayB].flatMap((node) => node.logs))
  t.notOk(logs.includes(token!), 'the token is in no log line')
  t.notOk(logs.includes(API_KEY), 'nor is the API key')
  t.comment(`screenshots: ${(await screenshots({ 'console-token-publisher': publisher, 'console-token-viewer': viewer })).join(' ')}`)
  t.comment(`first frame ${watched.firstFrameAt! - openedAt} ms after opening the watch link on relay B`)
})

t.test('console: a link never starts publishing, and ?ws= alone never sends the media to another relay', async (t) => {
  const context = await launch(t)
  const cluster = await tokenCluster()
  const [relayA, relayB] = cluster.relays as [ServiceProcess, ServiceProcess]
  const session = await cluster.createSession()
  const page = await openPage(t, context, 'link publisher', { width: 1280, height: 900 })
  await page.goto(`${relayA.url}/?${new URLSearchParams({
    session: session.session_id, client: session.client_id, stream_key: session.stream_key, publish: 'pattern', ws: wsOf(relayB),
  }).toString()}`)

  await waitForText(page, 'publish-hint', (hint) => hint.includes('press Start'))
  await page.waitForSelector('#relay-suggestion', { state: 'visible' })
  t.equal(await page.textContent('#relay-suggested'), wsOf(relayB), 'the suggested relay is shown')
  t.equal(await page.inputValue('#relay-url'), wsOf(relayA), 'the relay stays the page\'s own')
  t.equal((await snapshot(page)).publisher, null, 'nothing is published before a click')
  t.equal(await page.inputValue('#publish-source'), 'pattern', 'the link only chose the source')
  t.same([await publishersOn(relayA), await publishersOn(relayB)], [0, 0], 'no relay has a publisher')

  await page.click('#publish-start')
  await waitFor('the publisher open', async () => (await snapshot(page)).publisher?.state === 'open', 20_000)
  t.equal((await snapshot(page)).publisher?.relay, wsOf(relayA), 'Start sends to the page\'s own relay')
  await waitFor('relay A to count the publisher', async () => await publishersOn(relayA) === 1)
  t.equal(await publishersOn(relayB), 0)
  await page.click('#publish-stop')

  await page.click('#relay-use')
  t.equal(await page.inputValue('#relay-url'), wsOf(relayB), 'confirming fills the relay field')
  await page.click('#publish-start')
  await waitFor('the publisher open on relay B', async () => (await snapshot(page)).publisher?.state === 'open', 20_000)
  await waitFor('relay B to count the publisher', async () => await publishersOn(relayB) === 1)
  t.equal((await snapshot(page)).publisher?.relay, wsOf(relayB), 'the confirmed relay gets the media')
  await waitFor('relay A to let go of the old publisher', async () => await publishersOn(relayA) === 0)
})

t.test('/docs renders the API in Chromium (swagger-ui), open in token mode', async (t) => {
  const context = await launch(t)
  const cluster = await tokenCluster()
  const page = await openPage(t, context, 'docs', { width: 1280, height: 900 })
  await page.goto(`${cluster.controlPlane.url}/docs`)
  for (const path of ['/sessions', '/sessions/{id}/tokens', '/sessions/{id}/operators/{user_id}']) {
    await page.locator(`.opblock-summary-path[data-path="${path}"]`).first().waitFor({ timeout: 15_000 })
  }
  t.match(await page.locator('.info .description').textContent(), 'Authorization: Bearer <API key>', 'the description renders as written')
  const operations = await page.locator('.opblock').count()
  t.ok(operations >= 8, `${operations} operations rendered`)
  t.comment(`screenshot: ${(await screenshots({ docs: page })).join(' ')}`)
})
