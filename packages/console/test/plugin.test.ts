import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import { tempDir } from '@streaming-service/testing'
import { consolePlugin } from '../src/plugin.js'

async function appWith (t: { teardown (fn: () => unknown): void }, files: Record<string, string>) {
  const root = join(tempDir('ss-console-'), 'public')
  mkdirSync(root)
  for (const [name, body] of Object.entries(files)) writeFileSync(join(root, name), body)
  const app = Fastify()
  await app.register(consolePlugin, { root })
  t.teardown(() => app.close())
  return app
}

t.test('serves the page at / and its assets under /console/', async (t) => {
  const app = await appWith(t, { 'index.html': '<!doctype html>', 'console.js': 'export {}', 'console.css': 'body{}', 'notes.txt': 'x' })
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'self'/)
  t.equal(page.body, '<!doctype html>')
  t.match((await app.inject('/console/console.js')).headers['content-type'], /^text\/javascript/)
  t.match((await app.inject('/console/console.css')).headers['content-type'], /^text\/css/)
  t.equal((await app.inject({ method: 'HEAD', url: '/' })).statusCode, 200)
  for (const url of ['/console/notes.txt', '/console/missing.js', '/console/..%2Fpackage.json', '/console/index.html']) {
    t.equal((await app.inject(url)).statusCode, 404, url)
  }
})

t.test('an unbuilt console answers 503 with the usual error shape', async (t) => {
  const app = await appWith(t, {})
  const page = await app.inject('/')
  t.equal(page.statusCode, 503)
  t.same(page.json(), { error: { code: 'console_not_built', message: 'the web console is not built: run pnpm build' } })
})
