import { createHmac } from 'node:crypto'
import { WEBHOOK_HEADERS } from '@streaming-service/protocol'

/**
 * Standard Webhooks signature (https://www.standardwebhooks.com): HMAC-SHA256
 * over `<id>.<timestamp>.<body>` with the key's bytes (the base64 after
 * `whsec_`), as `v1,<base64>`.
 */
export function signWebhook (secretBase64: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', Buffer.from(secretBase64, 'base64')).update(`${id}.${timestampSeconds}.${body}`).digest('base64')
  return `v1,${mac}`
}

/** The headers of one delivery attempt: the id is the event's (the same on every retry), the timestamp the attempt's. */
export function webhookHeaders (secretBase64: string, id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000)
  return {
    'content-type': 'application/json',
    'user-agent': 'streaming-service-webhooks',
    [WEBHOOK_HEADERS.id]: id,
    [WEBHOOK_HEADERS.timestamp]: String(timestamp),
    [WEBHOOK_HEADERS.signature]: signWebhook(secretBase64, id, timestamp, body),
  }
}
