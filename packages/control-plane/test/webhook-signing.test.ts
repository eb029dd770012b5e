import t from 'tap'
import { Webhook } from 'standardwebhooks'
import { eventPayload, retryDelay } from '../src/webhooks/delivery.js'
import { signWebhook, webhookHeaders } from '../src/webhooks/sign.js'
import { webhookSecret } from './webhook-receiver.js'

// The pieces of a delivery without a network: the signature against the
// standardwebhooks package, the payload's shape, the backoff's bounds.

t.test('signWebhook matches the Standard Webhooks reference implementation and its example vector', async (t) => {
  t.equal(signWebhook('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'),
    'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', 'the specification\'s example')
  const secret = webhookSecret()
  const reference = new Webhook(secret)
  const at = new Date(1_700_000_000_000)
  t.equal(signWebhook(secret.slice('whsec_'.length), 'evt-1', 1_700_000_000, '{"a":1}'), reference.sign('evt-1', at, '{"a":1}'))
  const body = JSON.stringify({ id: 'evt-2' })
  const headers = webhookHeaders(secret.slice('whsec_'.length), 'evt-2', body)
  t.same(reference.verify(body, headers), { id: 'evt-2' }, 'headers verify with the reference')
  t.equal(headers['webhook-id'], 'evt-2')
  t.equal(headers['content-type'], 'application/json')
})

t.test('eventPayload is {id, type, session_id, occurred_at, data}', async (t) => {
  const occurredAt = new Date('2026-01-02T03:04:05.678Z')
  t.same(eventPayload({ id: 'e', type: 'operator.left', sessionId: 's', occurredAt, data: { user_id: 'op-1' } }),
    { id: 'e', type: 'operator.left', session_id: 's', occurred_at: '2026-01-02T03:04:05.678Z', data: { user_id: 'op-1' } })
})

t.test('retryDelay doubles from the base up to the max, scaled by a jitter of 0.5-1', async (t) => {
  t.same([1, 2, 3, 4, 5].map((attempt) => retryDelay(attempt, 1000, 10_000, 1)), [1000, 2000, 4000, 8000, 10_000])
  t.same([1, 2, 3].map((attempt) => retryDelay(attempt, 1000, 10_000, 0)), [500, 1000, 2000], 'at least half')
  t.equal(retryDelay(1000, 1000, 600_000, 1), 600_000, 'no overflow after many attempts')
})
