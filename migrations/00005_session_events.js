/**
 * SPEC §12: the session event log, which is also the webhook outbox. Every
 * event is inserted by the statement (or transaction) that makes the change
 * it reports; control planes deliver them in `seq` order per session.
 * - delivery: `pending` until every receiver acknowledged it (`delivered`),
 *   it was given up after WEBHOOK_RETRY_FOR (`failed`), or nobody was to
 *   receive it (`skipped`). `delivered_to` keeps the receivers that already
 *   acknowledged, so a retry only goes to the others.
 * - lease: a control plane that takes an event for an attempt sets
 *   `leased_until` and its `lease_token`; another takes it only after the
 *   lease ran out (its holder died).
 * - streaming_sessions.webhook_url: the session's own receiver (optional).
 * - indexes: due events, a session's events in order, and the session list
 *   (newest first, keyset on (created_at, id)).
 * @param {import('postgres').Sql} sql
 */
export async function up (sql) {
  await sql`alter table streaming_sessions add column webhook_url text`
  await sql`
    create table session_events (
      seq bigserial primary key,
      id uuid not null unique default gen_random_uuid(),
      session_id uuid not null references streaming_sessions (id) on delete cascade,
      type text not null,
      occurred_at timestamptz not null default now(),
      data jsonb not null default '{}',
      delivery text not null default 'pending'
        constraint session_events_delivery_check check (delivery in ('pending', 'delivered', 'failed', 'skipped')),
      attempts integer not null default 0,
      first_attempt_at timestamptz,
      next_attempt_at timestamptz not null default now(),
      delivered_at timestamptz,
      delivered_to text[] not null default '{}',
      last_error text,
      leased_until timestamptz,
      lease_token uuid
    )`
  await sql`create index session_events_session_idx on session_events (session_id, seq)`
  await sql`create index session_events_pending_idx on session_events (next_attempt_at, seq) where delivery = 'pending'`
  await sql`create index session_events_pending_session_idx on session_events (session_id, seq) where delivery = 'pending'`
  await sql`create index streaming_sessions_list_idx on streaming_sessions (created_at desc, id desc)`
  await sql`create index streaming_sessions_status_list_idx on streaming_sessions (status, created_at desc, id desc)`
}

/** @param {import('postgres').Sql} sql */
export async function down (sql) {
  await sql`drop index if exists streaming_sessions_status_list_idx`
  await sql`drop index if exists streaming_sessions_list_idx`
  await sql`drop table if exists session_events`
  await sql`alter table streaming_sessions drop column if exists webhook_url`
}
