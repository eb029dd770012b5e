/**
 * A counter bumped by every publisher admission. A relay remembers the epoch it
 * was admitted with, so a publisher that disconnects after a newer one took over
 * (possibly on another relay) cannot turn the session back to `waiting`.
 * @param {import('postgres').Sql} sql
 */
export async function up (sql) {
  await sql`alter table streaming_sessions add column publisher_epoch bigint not null default 0`
}

/** @param {import('postgres').Sql} sql */
export async function down (sql) {
  await sql`alter table streaming_sessions drop column if exists publisher_epoch`
}
