import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { startCluster, tempDir, waitFor } from '@streaming-service/testing'
import type { ConsoleApi, ConsoleSnapshot, ViewerSnapshot } from '../web/snapshot.js'

// The console in Debian's Chromium (never a downloaded browser): publisher on
// relay A with the test pattern, viewer on relay B joining 5 s later, glass-to-
// glass latency read back from the pattern, recovery after the publisher
// reconnects. Browser tests run serially (one Chromium at a time).

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = join(tmpdir(), 'streaming-service-artifacts')

interface ConsoleWindow { streamingConsole: ConsoleApi }
interface PageDocument { document: { getElementById (id: string): { textContent: string | null, value?: string } | null } }

async function snapshot (page: Page): Promise<ConsoleSnapshot> {
  return await page.evaluate(() => (globalThis as unknown as ConsoleWindow).streamingConsole.snapshot())
}

async function viewerState (page: Page): Promise<ViewerSnapshot> {
  const viewer = (await snapshot(page)).viewer
  if (viewer === null) throw new Error('the page is not watching')
  return viewer
}

/** Waits until the text (or, for inputs, the value) of element #id passes `check`. */
async function waitForText (page: Page, id: string, check: (text: string) => boolean, timeoutMs = 15_000): Promise<string> {
  let text = ''
  try {
    await waitFor(`#${id}`, async () => {
      text = await page.evaluate((id) => {
        const element = (globalThis as unknown as PageDocument).document.getElementById(id)
        return element?.value ?? element?.textContent ?? ''
      }, id)
      return check(text)
    }, timeoutMs, 100)
  } catch (err) {
    throw new Error(`#${id} still shows "${text}"`, { cause: err })
  }
  return text
}

/** Waits until the video's playhead has moved `seconds` past where it is now. */
async function playsOn (page: Page, seconds = 0.5): Promise<void> {
  const { currentTime } = await viewerState(page)
  await waitFor(`currentTime to advance ${seconds} s past ${currentTime}`, async () => {
    const now = await viewerState(page)
    return now.videoWidth > 0 && now.currentTime > currentTime + seconds
  }, 10_000)
}

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

async function launch (t: Test): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium: apt-get install chromium`)
  const context = await chromium.launchPersistentContext(tempDir('ss-chromium-'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    ],
  })
  t.teardown(async () => { await context.close() })
  return context
}

/** A page whose uncaught errors fail the test and whose console errors are shown. */
async function openPage (t: Test, context: BrowserContext, name: string, viewport: { width: number, height: number }): Promise<Page> {
  const page = await context.newPage()
  await page.setViewportSize(viewport)
  page.on('pageerror', (err) => t.fail(`${name} page: uncaught ${err.message}`))
  page.on('console', (message) => { if (message.type() === 'error') t.comment(`${name} console: ${message.text()}`) })
  return page
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

  mkdirSync(ARTIFACTS, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const viewerShot = join(ARTIFACTS, `console-viewer-${stamp}.png`)
  const publisherShot = join(ARTIFACTS, `console-publisher-${stamp}.png`)
  await viewer.screenshot({ path: viewerShot, fullPage: true })
  await publisher.screenshot({ path: publisherShot, fullPage: true })
  t.comment(`screenshots: ${viewerShot} ${publisherShot}`)
  t.comment(`time to first frame ${timeToFirstFrame} ms (${inPage} ms in the page); latency median ${median} ms, p95 ${p95} ms (${latency.length} samples over 6 s); ` +
    `recovery after publisher reconnect ${recovery} ms; latency median after recovery ${medianAfter} ms`)
})
