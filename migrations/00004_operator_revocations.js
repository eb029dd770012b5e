/**
 * SPEC §9 revocation: an operator's tokens issued up to `revoked_at` are
 * refused on every relay, also relays started later. The row stays after the
 * operator's own row is deleted (its slot is free again); it goes with its
 * session.
 * @param {import('postgres').Sql} sql
 */
export async function up (sql) {
  await sql`
    create table operator_revocations (
      session_id uuid not null references streaming_sessions (id) on delete cascade,
      user_id text not null,
      revoked_at timestamptz not null default now(),
      primary key (session_id, user_id)
    )`
}

/** @param {import('postgres').Sql} sql */
export async function down (sql) {
  await sql`drop table if exists operator_revocations`
}
