// Helpers of the console's browser tests: Debian's Chromium through
// playwright-core (never a downloaded browser) and the page's snapshot API.
import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { tempDir, waitFor } from '@streaming-service/testing'
import type { ConsoleApi, ConsoleSnapshot, ViewerSnapshot } from '../web/snapshot.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = join(tmpdir(), 'streaming-service-artifacts')

export interface ConsoleWindow { streamingConsole: ConsoleApi }
interface PageDocument { document: { getElementById (id: string): { textContent: string | null, value?: string } | null } }

export async function snapshot (page: Page): Promise<ConsoleSnapshot> {
  return await page.evaluate(() => (globalThis as unknown as ConsoleWindow).streamingConsole.snapshot())
}

export async function viewerState (page: Page): Promise<ViewerSnapshot> {
  const viewer = (await snapshot(page)).viewer
  if (viewer === null) throw new Error('the page is not watching')
  return viewer
}

/** Waits until the text (or, for inputs, the value) of element #id passes `check`. */
export async function waitForText (page: Page, id: string, check: (text: string) => boolean, timeoutMs = 15_000): Promise<string> {
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
export async function playsOn (page: Page, seconds = 0.5): Promise<void> {
  const { currentTime } = await viewerState(page)
  await waitFor(`currentTime to advance ${seconds} s past ${currentTime}`, async () => {
    const now = await viewerState(page)
    return now.videoWidth > 0 && now.currentTime > currentTime + seconds
  }, 10_000)
}

export async function launch (t: Test): Promise<BrowserContext> {
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
export async function openPage (t: Test, context: BrowserContext, name: string, viewport: { width: number, height: number }): Promise<Page> {
  const page = await context.newPage()
  await page.setViewportSize(viewport)
  page.on('pageerror', (err) => t.fail(`${name} page: uncaught ${err.message}`))
  page.on('console', (message) => { if (message.type() === 'error') t.comment(`${name} console: ${message.text()}`) })
  return page
}

/** Full-page screenshots into the artifacts directory; returns their paths. */
export async function screenshots (pages: Record<string, Page>): Promise<string[]> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const paths: string[] = []
  for (const [name, page] of Object.entries(pages)) {
    const path = join(ARTIFACTS, `${name}-${stamp}.png`)
    await page.screenshot({ path, fullPage: true })
    paths.push(path)
  }
  return paths
}
