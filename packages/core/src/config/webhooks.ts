import type { AppEnv } from './types.js'

export interface WebhookConfig {
  /** WEBHOOK_URL: receives every session's events. */
  url?: string
  /** WEBHOOK_SECRET without its `whsec_` prefix: the Standard Webhooks signing key, base64 (a string: the config is frozen). */
  secret?: string
  /** WEBHOOK_TIMEOUT: one POST, from connect to the answer. */
  timeoutMs: number
  /** WEBHOOK_CONCURRENCY: POSTs in flight per control plane. */
  concurrency: number
  /** WEBHOOK_POLL_INTERVAL: how often a control plane looks for due events. */
  pollIntervalMs: number
  /** WEBHOOK_RETRY_BACKOFF, WEBHOOK_RETRY_BACKOFF_MAX: the first retry's delay, doubling up to the max (with jitter). */
  backoffMs: number
  backoffMaxMs: number
  /** WEBHOOK_RETRY_FOR: after this long since its first attempt, an event is given up (`failed`). */
  retryForMs: number
  /** WEBHOOK_ALLOWED_HOSTS: hosts a session's webhook_url may name; empty: any. */
  allowedHosts: readonly string[]
}

/** The raw variables; durations and counts already parsed by the schema. */
export interface WebhookEnv {
  WEBHOOK_URL?: string
  WEBHOOK_SECRET?: string
  WEBHOOK_TIMEOUT: number
  WEBHOOK_CONCURRENCY: number
  WEBHOOK_POLL_INTERVAL: number
  WEBHOOK_RETRY_BACKOFF: number
  WEBHOOK_RETRY_BACKOFF_MAX: number
  WEBHOOK_RETRY_FOR: number
  WEBHOOK_ALLOWED_HOSTS?: string
}

/** Standard Webhooks keys are 24 to 64 random bytes; fewer than 16 is not a key. */
const MIN_SECRET_BYTES = 16

/**
 * SPEC §12's configuration. A receiver needs a key to check signatures
 * against, so WEBHOOK_URL requires WEBHOOK_SECRET (a session's own
 * webhook_url is refused while none is set). Problems name the secret,
 * never quote it.
 */
export function loadWebhookConfig (env: WebhookEnv, appEnv: AppEnv, problems: string[]): WebhookConfig {
  let secret: string | undefined
  if (env.WEBHOOK_SECRET !== undefined) {
    const encoded = env.WEBHOOK_SECRET.startsWith('whsec_') ? env.WEBHOOK_SECRET.slice(6) : undefined
    secret = encoded !== undefined && /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) ? encoded : undefined
    if (secret === undefined || Buffer.from(secret, 'base64').length < MIN_SECRET_BYTES) {
      problems.push(`WEBHOOK_SECRET: must be whsec_ followed by at least ${MIN_SECRET_BYTES} random bytes in base64 (e.g. "whsec_$(openssl rand -base64 32)")`)
      secret = undefined
    }
  }
  if (env.WEBHOOK_URL !== undefined) {
    if (!/^https?:$/.test(new URL(env.WEBHOOK_URL).protocol)) problems.push('WEBHOOK_URL: must be an http or https URL')
    else if (appEnv === 'production' && new URL(env.WEBHOOK_URL).protocol !== 'https:') problems.push('WEBHOOK_URL: must be https in production')
    if (env.WEBHOOK_SECRET === undefined) problems.push('WEBHOOK_SECRET: required with WEBHOOK_URL (receivers verify signatures with it)')
  }
  if (env.WEBHOOK_RETRY_BACKOFF > env.WEBHOOK_RETRY_BACKOFF_MAX) problems.push('WEBHOOK_RETRY_BACKOFF: must not exceed WEBHOOK_RETRY_BACKOFF_MAX')
  return {
    ...(env.WEBHOOK_URL === undefined ? {} : { url: env.WEBHOOK_URL }),
    ...(secret === undefined ? {} : { secret }),
    timeoutMs: env.WEBHOOK_TIMEOUT,
    concurrency: env.WEBHOOK_CONCURRENCY,
    pollIntervalMs: env.WEBHOOK_POLL_INTERVAL,
    backoffMs: env.WEBHOOK_RETRY_BACKOFF,
    backoffMaxMs: env.WEBHOOK_RETRY_BACKOFF_MAX,
    retryForMs: env.WEBHOOK_RETRY_FOR,
    allowedHosts: (env.WEBHOOK_ALLOWED_HOSTS ?? '').split(',').map((host) => host.trim().toLowerCase()).filter((host) => host !== ''),
  }
}

/** Why `url` cannot be a session's webhook_url, or undefined when it can. */
export function webhookUrlProblem (url: string, config: WebhookConfig): string | undefined {
  let parsed: URL
  try { parsed = new URL(url) } catch { return 'not a URL' }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be an http or https URL'
  if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials'
  if (config.allowedHosts.length > 0 && !config.allowedHosts.includes(parsed.hostname.toLowerCase())) return `host ${parsed.hostname} is not in WEBHOOK_ALLOWED_HOSTS`
  if (config.secret === undefined) return 'this service has no WEBHOOK_SECRET to sign deliveries with'
  return undefined
}
