import type { Pool } from 'pg';

/** One schema change. Versions only grow; a released migration is never edited. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * The history schema. `event_id` is `collate "C"` so that an id-prefix LIKE is a range scan of
 * the primary key whatever the database's collation. Deliveries and attempts are keyed by their
 * stream entry (stream key, entry id): writing a batch twice inserts nothing the second time.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'event history',
    sql: `
create table groq_events (
  event_id text collate "C" primary key,
  type text not null,
  created text not null default '',
  received_at timestamptz not null,
  key_index integer,
  payload text,
  status text not null default 'received',
  deliveries integer not null default 0,
  duplicates integer not null default 0,
  attempts integer not null default 0,
  last_error text,
  last_attempt_at timestamptz,
  updated_at timestamptz not null default now()
);
create index groq_events_received on groq_events (received_at desc, event_id desc);
create index groq_events_type_received on groq_events (type, received_at desc, event_id desc);
create index groq_events_status_received on groq_events (status, received_at desc, event_id desc);

create table groq_deliveries (
  stream text not null,
  entry_id text not null,
  event_id text collate "C" not null,
  received_at timestamptz not null,
  outcome text not null,
  key_index integer,
  primary key (stream, entry_id)
);
create index groq_deliveries_event on groq_deliveries (event_id, received_at);

create table groq_attempts (
  stream text not null,
  entry_id text not null,
  event_id text collate "C" not null,
  attempt integer not null,
  started_at timestamptz not null,
  ended_at timestamptz not null,
  worker text not null,
  outcome text not null,
  error text,
  error_type text,
  replay_id text,
  primary key (stream, entry_id)
);
create index groq_attempts_event on groq_attempts (event_id, ended_at);

create table groq_replays (
  replay_id text primary key,
  filters jsonb not null,
  count integer not null,
  requested_at timestamptz not null
);
create index groq_replays_requested on groq_replays (requested_at);
`,
  },
  {
    version: 2,
    name: 'event counts kept incrementally',
    // What an event's row needs to take a batch's rows into account without reading its other
    // rows: the ordering key of its last attempt and its last requeue. Backfilled from the rows.
    sql: `
alter table groq_events
  add column last_outcome text,
  add column last_attempt integer,
  add column last_entry_id text,
  add column last_requeue_at timestamptz;
update groq_events e set last_outcome = la.outcome, last_attempt = la.attempt,
  last_entry_id = la.entry_id
from (select distinct on (event_id) event_id, outcome, attempt, entry_id from groq_attempts
      order by event_id, (outcome = 'skipped'), ended_at desc, attempt desc, entry_id desc) la
where la.event_id = e.event_id;
update groq_events e set last_requeue_at = d.requeued
from (select event_id, max(received_at) as requeued from groq_deliveries
      where outcome = 'requeued' group by event_id) d
where d.event_id = e.event_id;
`,
  },
];

/** Arbitrary constant naming the migration lock among the database's advisory locks. */
const MIGRATION_LOCK = 7_172_017_001;

/**
 * Brings the schema up to date, in one transaction under an advisory transaction lock: the first
 * process to get the lock migrates, the others wait for it and then find nothing to do. Returns
 * the versions it applied. Refuses a database migrated by a newer build.
 */
export async function migrate(
  pool: Pool,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      `create table if not exists groq_schema_migrations (
         version integer primary key,
         name text not null,
         applied_at timestamptz not null default now())`,
    );
    const { rows } = await client.query<{ version: number }>(
      'select version from groq_schema_migrations',
    );
    const applied = new Set(rows.map((row) => row.version));
    const latest = Math.max(0, ...migrations.map((m) => m.version));
    const newer = [...applied].filter((version) => version > latest);
    if (newer.length > 0) {
      throw new Error(
        `the history database has schema version ${Math.max(...newer)}, newer than this build knows (${latest}): upgrade groq-webhooks`,
      );
    }
    const done: number[] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('insert into groq_schema_migrations (version, name) values ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      done.push(migration.version);
    }
    await client.query('commit');
    return done;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
