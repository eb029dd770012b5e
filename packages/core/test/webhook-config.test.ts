import t from 'tap'
import { ConfigInvalidError, loadConfig, webhookUrlProblem } from '@streaming-service/core'

// SPEC §12 settings: WEBHOOK_URL needs a whsec_ secret; problems never quote the secret.

const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`

function problems (env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ APP_ENV: 'test', ...env })
  } catch (err) {
    if (err instanceof ConfigInvalidError) return (err as InstanceType<typeof ConfigInvalidError>).problems
    throw err
  }
  return []
}

t.test('defaults, and every WEBHOOK_ variable parsed', async (t) => {
  t.match(loadConfig({ APP_ENV: 'test' }).webhooks, {
    timeoutMs: 5000, concurrency: 16, pollIntervalMs: 250, backoffMs: 1000, backoffMaxMs: 600_000, retryForMs: 86_400_000, allowedHosts: [],
  })
  const config = loadConfig({
    APP_ENV: 'test',
    WEBHOOK_URL: 'https://hooks.example.com/x',
    WEBHOOK_SECRET: secret,
    WEBHOOK_TIMEOUT: '2s',
    WEBHOOK_CONCURRENCY: '4',
    WEBHOOK_POLL_INTERVAL: '100ms',
    WEBHOOK_RETRY_BACKOFF: '200ms',
    WEBHOOK_RETRY_BACKOFF_MAX: '1m',
    WEBHOOK_RETRY_FOR: '1h',
    WEBHOOK_ALLOWED_HOSTS: 'A.example.com, b.example.com',
  }).webhooks
  t.match(config, {
    url: 'https://hooks.example.com/x',
    secret: secret.slice(6),
    timeoutMs: 2000,
    concurrency: 4,
    pollIntervalMs: 100,
    backoffMs: 200,
    backoffMaxMs: 60_000,
    retryForMs: 3_600_000,
    allowedHosts: ['a.example.com', 'b.example.com'],
  })
})

t.test('WEBHOOK_URL requires a whsec_ secret of at least 16 bytes, never quoted; http is refused in production', async (t) => {
  t.match(problems({ WEBHOOK_URL: 'https://hooks.example.com/x' }), [/^WEBHOOK_SECRET: required with WEBHOOK_URL/])
  for (const bad of ['plain-secret-without-prefix', 'whsec_c2hvcnQ=', 'whsec_not base64!']) {
    const found = problems({ WEBHOOK_SECRET: bad })
    t.match(found, [/^WEBHOOK_SECRET: must be whsec_/], bad)
    t.notOk(found.join('\n').includes(bad), 'the secret is not quoted')
  }
  t.match(problems({ WEBHOOK_URL: 'ftp://hooks.example.com/x', WEBHOOK_SECRET: secret }), [/WEBHOOK_URL: must be an http or https URL/])
  t.match(problems({ WEBHOOK_RETRY_BACKOFF: '1h', WEBHOOK_RETRY_BACKOFF_MAX: '1m' }), [/WEBHOOK_RETRY_BACKOFF: must not exceed/])
  const production = problems({ APP_ENV: 'production', WEBHOOK_URL: 'http://hooks.example.com/x', WEBHOOK_SECRET: secret })
  t.ok(production.some((problem) => problem.startsWith('WEBHOOK_URL: must be https in production')))
  const password = problems({ WEBHOOK_URL: 'https://user:hunter2-secret@hooks.example.com:bad/x' })
  t.notOk(password.join('\n').includes('hunter2-secret'), 'a password in WEBHOOK_URL is redacted')
})

t.test('webhookUrlProblem: http(s), no credentials, an allowed host, and a secret to sign with', async (t) => {
  const config = loadConfig({ APP_ENV: 'test', WEBHOOK_SECRET: secret, WEBHOOK_ALLOWED_HOSTS: 'hooks.example.com' }).webhooks
  t.equal(webhookUrlProblem('https://hooks.example.com/a', config), undefined)
  t.equal(webhookUrlProblem('http://HOOKS.example.com:8080/a', config), undefined)
  t.match(webhookUrlProblem('nope', config), /not a URL/)
  t.match(webhookUrlProblem('file:///etc/passwd', config), /http or https/)
  t.match(webhookUrlProblem('https://u:p@hooks.example.com/', config), /credentials/)
  t.match(webhookUrlProblem('https://other.example.com/', config), /WEBHOOK_ALLOWED_HOSTS/)
  t.match(webhookUrlProblem('https://hooks.example.com/', loadConfig({ APP_ENV: 'test' }).webhooks), /no WEBHOOK_SECRET/)
})
