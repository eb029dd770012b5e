/**
 * Sessions and their operators.
 * @param {import('postgres').Sql} sql
 */
export async function up (sql) {
  await sql`
    create table streaming_sessions (
      id uuid primary key default gen_random_uuid(),
      client_id uuid not null,
      stream_key_hash bytea not null,
      status text not null default 'waiting'
        constraint streaming_sessions_status_check check (status in ('waiting', 'active', 'finished')),
      created_at timestamptz not null default now(),
      started_at timestamptz,
      finished_at timestamptz,
      updated_at timestamptz not null default now(),
      constraint streaming_sessions_finished_at_check check ((status = 'finished') = (finished_at is not null))
    )`
  await sql`create index streaming_sessions_client_id_idx on streaming_sessions (client_id)`
  await sql`create index streaming_sessions_live_idx on streaming_sessions (status) where status <> 'finished'`
  await sql`
    create table session_operators (
      session_id uuid not null references streaming_sessions (id) on delete cascade,
      user_id text not null
        constraint session_operators_user_id_check check (user_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
      joined_at timestamptz not null default now(),
      primary key (session_id, user_id)
    )`
}

/** @param {import('postgres').Sql} sql */
export async function down (sql) {
  await sql`drop table if exists session_operators`
  await sql`drop table if exists streaming_sessions`
}
