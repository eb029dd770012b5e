/** What the platform hears about a session (SPEC §12), in the order they can happen. */
export const SESSION_EVENT_TYPES = [
  'session.created',
  'session.active',
  'session.waiting',
  'session.finished',
  'operator.joined',
  'operator.left',
  'operator.revoked',
] as const

export type SessionEventType = typeof SESSION_EVENT_TYPES[number]

/**
 * The body of a webhook POST and an item of `GET /sessions/:id/events`
 * (SPEC §12). `id` is also the `webhook-id` header: the same on every retry.
 * `data` by type: session.created/active/waiting `{client_id}` (active also
 * `publisher_epoch`); session.finished `{reason: "deleted" | "idle"}`;
 * operator.* `{user_id}` (joined also `first_join`). Never a secret.
 */
export interface SessionEventPayload {
  id: string
  type: SessionEventType
  session_id: string
  occurred_at: string
  data: Record<string, unknown>
}

/** Where an event's webhook delivery stands. */
export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'skipped'

/** `GET /sessions/:id/events` item: the payload and its delivery. */
export interface SessionEventView extends SessionEventPayload {
  delivery: { state: DeliveryState, attempts: number, delivered_at: string | null, last_error: string | null }
}

/** `GET /sessions/:id/events` → 200, in the order they happened. */
export interface SessionEventList {
  events: SessionEventView[]
}

/** Standard Webhooks headers of every delivery. */
export const WEBHOOK_HEADERS = { id: 'webhook-id', timestamp: 'webhook-timestamp', signature: 'webhook-signature' } as const
