/**
 * Sessions do not live forever (SPEC §10), and counting them must not scan
 * them all.
 * - Indexes for the sweeper: sessions that never became active, by age; finished
 *   sessions, by when they finished.
 * - session_counts: sessions per status, kept by statement-level triggers
 *   (one counter update per status that changed, per statement, so a batch
 *   delete costs one update), read by the `sessions{status}` gauge.
 * @param {import('postgres').Sql} sql
 */
export async function up (sql) {
  await sql`create index streaming_sessions_never_active_idx on streaming_sessions (created_at) where status = 'waiting' and started_at is null`
  await sql`create index streaming_sessions_finished_at_idx on streaming_sessions (finished_at) where status = 'finished'`
  await sql`create table session_counts (status text primary key, count bigint not null)`
  await sql`
    insert into session_counts (status, count)
    select status, (select count(*) from streaming_sessions s where s.status = statuses.status)
    from (values ('waiting'), ('active'), ('finished')) as statuses (status)`
  await sql`
    create function session_counts_apply () returns trigger language plpgsql as $$
    begin
      if tg_op = 'INSERT' then
        update session_counts c set count = c.count + d.n
        from (select status, count(*) as n from new_rows group by status) d where c.status = d.status;
      elsif tg_op = 'DELETE' then
        update session_counts c set count = c.count - d.n
        from (select status, count(*) as n from old_rows group by status) d where c.status = d.status;
      else
        update session_counts c set count = c.count + d.n
        from (
          select status, sum(n) as n from (
            select status, -1 as n from old_rows
            union all
            select status, 1 as n from new_rows
          ) changes group by status having sum(n) <> 0
        ) d where c.status = d.status;
      end if;
      return null;
    end
    $$`
  await sql`
    create trigger session_counts_insert after insert on streaming_sessions
    referencing new table as new_rows for each statement execute function session_counts_apply()`
  await sql`
    create trigger session_counts_update after update on streaming_sessions
    referencing old table as old_rows new table as new_rows for each statement execute function session_counts_apply()`
  await sql`
    create trigger session_counts_delete after delete on streaming_sessions
    referencing old table as old_rows for each statement execute function session_counts_apply()`
}

/** @param {import('postgres').Sql} sql */
export async function down (sql) {
  await sql`drop trigger if exists session_counts_delete on streaming_sessions`
  await sql`drop trigger if exists session_counts_update on streaming_sessions`
  await sql`drop trigger if exists session_counts_insert on streaming_sessions`
  await sql`drop function if exists session_counts_apply ()`
  await sql`drop table if exists session_counts`
  await sql`drop index if exists streaming_sessions_finished_at_idx`
  await sql`drop index if exists streaming_sessions_never_active_idx`
}
