import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { SessionEventPayload } from '@streaming-service/protocol'

interface Teardown { teardown (fn: () => unknown): void }

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders
  body: string
  payload: SessionEventPayload
  /** When the request arrived and when it was answered (ms since epoch). */
  at: number
  answeredAt?: number
  status?: number
}

export interface WebhookReceiver {
  url: string
  /** Every request, in arrival order. */
  received: ReceivedWebhook[]
  /** Requests answered 2xx, in arrival order. */
  accepted (): ReceivedWebhook[]
  /** How the next requests are answered: a status, possibly after a delay. */
  answer: (hook: ReceivedWebhook) => Promise<number> | number
  /** The most requests of one webhook-id that were ever in flight at the same time. */
  maxConcurrentPerId: number
}

/** A real HTTP server on a free port that records what control planes post to it. */
export async function startReceiver (t: Teardown, answer: WebhookReceiver['answer'] = () => 204): Promise<WebhookReceiver> {
  const inFlight = new Map<string, number>()
  const receiver: WebhookReceiver = {
    url: '',
    received: [],
    accepted: () => receiver.received.filter((hook) => hook.status !== undefined && hook.status < 300),
    answer,
    maxConcurrentPerId: 0,
  }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      const hook: ReceivedWebhook = { headers: req.headers, body, payload: JSON.parse(body) as SessionEventPayload, at: Date.now() }
      receiver.received.push(hook)
      const id = String(req.headers['webhook-id'])
      inFlight.set(id, (inFlight.get(id) ?? 0) + 1)
      receiver.maxConcurrentPerId = Math.max(receiver.maxConcurrentPerId, inFlight.get(id)!)
      void Promise.resolve(receiver.answer(hook)).then((status) => {
        inFlight.set(id, inFlight.get(id)! - 1)
        hook.answeredAt = Date.now()
        hook.status = status
        res.writeHead(status).end()
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return receiver
}

/** A fresh Standard Webhooks secret. */
export function webhookSecret (): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')}`
}
