import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  HistoryStore,
  migrate,
  openHistoryPool,
  parseFilters,
  replayEvents,
  type StreamEntry,
} from '@groq-webhooks/archive';
import {
  closeRedis,
  createRedis,
  HistoryWriter,
  openQueues,
  waitForRedis,
} from '@groq-webhooks/queue';
import { startPostgres, startRedis } from '@groq-webhooks/testing';
import type { Pool } from 'pg';
import { cpuMillis, descendantsCpuMillis } from './proc-stat.js';
import { machine, ROOT } from './processes.js';

// The event history at scale (issue 17): a generated archive of N events (default 1,000,000,
// with one delivery and one attempt each), the search queries timed with their plans, and the
// replay of M events (default 100,000) into a real Redis queue. First, what archiving costs: W
// events (default 50,000) written as the archiver writes them, in batches, with the CPU of this
// process and of PostgreSQL per event.
//
//   node bench/dist/history.js                     # 1,000,000 events, replay 100,000
//   node bench/dist/history.js --events 100000 --replay 20000

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== '--'),
  options: {
    events: { type: 'string', default: '1000000' },
    writes: { type: 'string', default: '50000' },
    replay: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '7' },
    out: { type: 'string', default: join(ROOT, 'reports') },
  },
});
const EVENTS = Number(args.events);
const REPLAY = Number(args.replay);
const RUNS = Number(args.runs);
const WRITES = Number(args.writes);
/** Records per archive batch, as the archiver reads them at most. */
const WRITE_BATCH = 1000;
/** The generated archive spans 30 days up to this time. */
const END = Date.parse('2026-11-28T00:00:00Z');
const SPAN_MS = 30 * 86_400_000;

const lines: string[] = [];
function say(text = ''): void {
  process.stdout.write(`${text}\n`);
  lines.push(text);
}

/** Fills the archive in SQL (generate_series): no round trip per row. */
async function generate(pool: Pool): Promise<void> {
  const step = SPAN_MS / EVENTS;
  await pool.query(
    `insert into groq_events (event_id, type, created, received_at, key_index, payload, status,
        deliveries, duplicates, attempts, last_error, last_attempt_at)
     select 'evt_' || lpad(i::text, 8, '0'),
            (array['resource.created','resource.updated','resource.deleted','resource.archived'])[1 + i % 4],
            '2026-11-01T00:00:00Z',
            to_timestamp(($1::float8 + i * $2::float8) / 1000.0),
            0,
            '{"id":"evt_' || lpad(i::text, 8, '0') || '","type":"' ||
              (array['resource.created','resource.updated','resource.deleted','resource.archived'])[1 + i % 4] ||
              '","data":{"id":"res_' || (i % 50000) || '","name":"resource ' || i || '","attributes":{"size":' || (i % 977) || ',"region":"eu-west-1"}},"created":"2026-11-01T00:00:00Z"}',
            case when i % 50 = 0 then 'failed' when i % 97 = 0 then 'unhandled' else 'completed' end,
            1 + (i % 20 = 0)::int, (i % 20 = 0)::int, 1 + (i % 50 = 0)::int * 7,
            case when i % 50 = 0 then 'downstream API answered 502' end,
            to_timestamp(($1::float8 + i * $2::float8 + 40) / 1000.0)
     from generate_series(0, $3::int - 1) as i`,
    [END - SPAN_MS, step, EVENTS],
  );
  await pool.query(
    `insert into groq_deliveries (stream, entry_id, event_id, received_at, outcome, key_index)
     select '{groq}:groq-events:history', (extract(epoch from received_at) * 1000)::bigint || '-0',
            event_id, received_at, 'received', 0 from groq_events`,
  );
  await pool.query(
    `insert into groq_attempts (stream, entry_id, event_id, attempt, started_at, ended_at, worker,
        outcome, error, error_type)
     select '{groq}:groq-events:history', (extract(epoch from received_at) * 1000)::bigint || '-1',
            event_id, 1, received_at + interval '10 ms', received_at + interval '40 ms',
            'groq-worker-1', status, last_error, case when last_error is not null then 'Error' end
     from groq_events`,
  );
  // What the archiver keeps beside the counts (schema 2): the last attempt's ordering key.
  await pool.query(
    `update groq_events set last_outcome = status, last_attempt = 1,
       last_entry_id = (extract(epoch from received_at) * 1000)::bigint || '-1'`,
  );
  await pool.query('vacuum analyze groq_events');
  await pool.query('analyze groq_deliveries');
  await pool.query('analyze groq_attempts');
}

/**
 * What writing `events` events into a fresh archive costs, in batches of {@link WRITE_BATCH}
 * stream entries as the archiver writes them: its own CPU (building the statement) and
 * PostgreSQL's, per event. `attempts`: one attempt record each (a queue filled without the
 * ingest, as the worker bench does); `deliveries+attempts`: a delivery with its payload, and its
 * attempt in the next batch.
 */
async function archiveWrites(
  store: HistoryStore,
  shape: 'attempts' | 'deliveries+attempts',
  events: number,
): Promise<string> {
  const stream = '{groq}:groq-events:history';
  const now = Date.now();
  const created = new Date(now).toISOString();
  const id = (i: number) => `evt_w_${shape.length}_${now}_${i}`;
  const attempt = (i: number): StreamEntry => ({
    stream,
    entryId: `${now}-${2 * i + 1}`,
    record: {
      kind: 'attempt',
      eventId: id(i),
      type: 'resource.updated',
      attempt: 1,
      startedAt: now + i,
      endedAt: now + i + 3,
      worker: 'groq-worker-1',
      outcome: 'completed',
    },
  });
  const delivery = (i: number): StreamEntry => ({
    stream,
    entryId: `${now}-${2 * i}`,
    record: {
      kind: 'delivery',
      eventId: id(i),
      type: 'resource.updated',
      created,
      receivedAt: now + i,
      keyIndex: 0,
      outcome: 'received',
      payload: JSON.stringify({
        id: id(i),
        type: 'resource.updated',
        data: { id: `res_${i % 1000}`, name: `resource ${i}`, attributes: { size: i % 977 } },
        created,
      }),
    },
  });
  const batches: StreamEntry[][] = [];
  if (shape === 'attempts') {
    for (let i = 0; i < events; i += WRITE_BATCH) {
      batches.push(
        Array.from({ length: Math.min(WRITE_BATCH, events - i) }, (_, j) => attempt(i + j)),
      );
    }
  } else {
    // Each batch: half of it new deliveries, half the attempts of the previous batch's.
    const half = WRITE_BATCH / 2;
    for (let i = 0; i <= events; i += half) {
      const batch: StreamEntry[] = [];
      for (let j = i; j < Math.min(i + half, events); j++) batch.push(delivery(j));
      for (let j = Math.max(0, i - half); j < Math.min(i, events); j++) batch.push(attempt(j));
      batches.push(batch);
    }
  }
  const postgresCpu = () =>
    postgres.pid === undefined
      ? 0
      : (cpuMillis(postgres.pid) ?? 0) + descendantsCpuMillis(postgres.pid);
  const cpuBefore = process.cpuUsage();
  const postgresBefore = postgresCpu();
  const started = performance.now();
  for (const batch of batches) await store.writeBatch(batch);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const postgresMs = postgresCpu() - postgresBefore;
  const per = (micros: number) => (micros / events).toFixed(1);
  return `| ${shape} | ${events.toLocaleString('en-US')} | ${Math.round(events / seconds).toLocaleString('en-US')} | ${per(cpu.user + cpu.system)} | ${per(postgresMs * 1000)} |`;
}

interface Timed {
  name: string;
  medianMs: number;
  maxMs: number;
  rows: number;
}

async function time(name: string, run: () => Promise<number>): Promise<Timed> {
  await run(); // warm
  const samples: number[] = [];
  let rows = 0;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    rows = await run();
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  return {
    name,
    medianMs: samples[Math.floor(samples.length / 2)] ?? 0,
    maxMs: samples.at(-1) ?? 0,
    rows,
  };
}

async function explain(pool: Pool, sql: string, params: unknown[]): Promise<string> {
  const { rows } = await pool.query<{ 'QUERY PLAN': string }>(
    `explain (analyze, buffers) ${sql}`,
    params,
  );
  return rows.map((row) => row['QUERY PLAN']).join('\n');
}

const postgres = await startPostgres();
const redis = await startRedis();
const url = await postgres.createDatabase('groq_history_bench');
const pool = openHistoryPool(url, { max: 4, statementTimeoutMs: 600_000 });
const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'admin');
try {
  await waitForRedis(client, 5000);
  await migrate(pool);
  const info = machine();
  const version = (await pool.query<{ server_version: string }>('show server_version')).rows[0]
    ?.server_version;
  say(`# Event history benchmark (${new Date().toISOString()})`);
  say();
  say(
    `machine: ${info.cpu}, ${info.memoryGiB} GiB, Node ${info.node}; PostgreSQL ${version} (throwaway server, fsync off, default shared_buffers); ${info.redis}`,
  );
  say();
  const store = new HistoryStore(pool);
  if (WRITES > 0) {
    say(`## Archive writes (batches of ${WRITE_BATCH} records, as the archiver writes them)`);
    say();
    say('| records | events | events/s | writer CPU µs/event | PostgreSQL CPU µs/event |');
    say('|---|---|---|---|---|');
    // A batch first, so that the measured ones find their statements planned.
    await archiveWrites(store, 'attempts', WRITE_BATCH);
    say(await archiveWrites(store, 'attempts', WRITES));
    say(await archiveWrites(store, 'deliveries+attempts', WRITES));
    say();
    await pool.query('truncate groq_events, groq_deliveries, groq_attempts, groq_replays');
  }
  const generated = performance.now();
  await generate(pool);
  const size = (
    await pool.query<{ s: string }>(
      'select pg_size_pretty(pg_database_size(current_database())) as s',
    )
  ).rows[0]?.s;
  say(
    `generated ${EVENTS.toLocaleString('en-US')} events (+1 delivery, +1 attempt each) over 30 days in ${((performance.now() - generated) / 1000).toFixed(1)} s; database ${size}`,
  );
  say();

  // One hour in the middle of the range, and the id of an event in it.
  const hourStart = new Date(END - SPAN_MS / 2);
  const hour = {
    since: hourStart.toISOString(),
    until: new Date(hourStart.getTime() + 3600_000).toISOString(),
  };
  const byTypeHour = parseFilters({ type: 'resource.updated', ...hour });
  const middleId = `evt_${String(Math.floor(EVENTS / 2)).padStart(8, '0')}`;
  const results = [
    await time(
      'events list --type resource.updated --since/--until (1 h) --limit 50',
      async () => (await store.list(byTypeHour, 50)).events.length,
    ),
    await time(
      'events list --type resource.updated --since/--until (1 h) --limit 1000',
      async () => (await store.list(byTypeHour, 1000)).events.length,
    ),
    await time(
      'events list --status failed --since/--until (1 day) --limit 50',
      async () =>
        (
          await store.list(
            parseFilters({
              status: 'failed',
              since: hour.since,
              until: new Date(hourStart.getTime() + 86_400_000).toISOString(),
            }),
            50,
          )
        ).events.length,
    ),
    await time(
      'events list (newest 50, no filter)',
      async () => (await store.list({}, 50)).events.length,
    ),
    await time(
      `events list --id-prefix ${middleId.slice(0, 10)}`,
      async () =>
        (await store.list(parseFilters({ idPrefix: middleId.slice(0, 10) }), 50)).events.length,
    ),
    await time(`events show ${middleId}`, async () =>
      (await store.show(middleId)) === undefined ? 0 : 1,
    ),
    await time(
      'chart: counts per minute by status, type + 1 h',
      async () => (await store.counts(byTypeHour)).buckets.length,
    ),
    await time(
      'chart: counts per 5 min by status, 1 day, all types',
      async () =>
        (
          await store.counts(
            parseFilters({
              since: hour.since,
              until: new Date(hourStart.getTime() + 86_400_000).toISOString(),
            }),
          )
        ).buckets.length,
    ),
  ];
  say('| query | median | max | rows |');
  say('|---|---|---|---|');
  for (const r of results) {
    say(`| ${r.name} | ${r.medianMs.toFixed(1)} ms | ${r.maxMs.toFixed(1)} ms | ${r.rows} |`);
  }
  say();
  say('## Plans');
  say();
  const plans: [string, string, unknown[]][] = [
    [
      'events list by type and one hour (limit 50)',
      `select event_id, type, created, received_at, key_index, status, deliveries, duplicates, attempts, last_error, last_attempt_at
       from groq_events where type = $1 and received_at >= $2 and received_at < $3
       order by received_at desc, event_id desc limit 51`,
      ['resource.updated', hour.since, hour.until],
    ],
    [
      'events list by id prefix',
      `select event_id from groq_events where event_id like $1 order by received_at desc, event_id desc limit 51`,
      // As the store sends it: LIKE's wildcards in the prefix escaped.
      [`${middleId.slice(0, 10).replace(/_/g, '\\_')}%`],
    ],
    [
      'chart: per-minute counts by status, type + one hour',
      `select date_bin(make_interval(secs => 60), received_at, $2::timestamptz) as bucket, status, count(*)::int
       from groq_events where type = $1 and received_at >= $2 and received_at < $3 group by 1, 2 order by 1`,
      ['resource.updated', hour.since, hour.until],
    ],
  ];
  for (const [title, sql, params] of plans) {
    say(`### ${title}`);
    say('```');
    say(await explain(pool, sql, params));
    say('```');
    say();
  }

  // Replay: the REPLAY oldest resource.updated events, into real queues through BullMQ.
  const settings = {
    queueName: 'groq-events',
    queuePrefix: '{groq}',
    queueShards: 1,
    jobAttempts: 8,
    backoffBaseMs: 1000,
  };
  const queues = openQueues(client, settings);
  const writer = new HistoryWriter({ client, settings });
  const result = await replayEvents(
    { store, queues, writer },
    { filters: parseFilters({ type: 'resource.updated' }), limit: REPLAY },
  );
  const waiting = await queues[0]?.getWaitingCount();
  await Promise.all(queues.map((q) => q.close()));
  const rate = result.enqueued / (result.durationMs / 1000);
  say(
    `replay: ${result.enqueued.toLocaleString('en-US')} events enqueued in ${(result.durationMs / 1000).toFixed(2)} s = ${Math.round(rate).toLocaleString('en-US')} events/s (${waiting} jobs waiting in Redis afterwards)`,
  );
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, `history-${new Date().toISOString().replace(/[:.]/g, '-')}.md`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  say();
  say(`report: ${file}`);
} finally {
  await pool.end().catch(() => {});
  await closeRedis(client);
  await redis.cleanup();
  await postgres.cleanup();
}
