import type { HistoryRecord } from '@groq-webhooks/queue';
import type { Pool } from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attempt, BACKENDS, received, T0, type TestDatabase } from './__support__/backends.js';
import { parseFilters } from './filters.js';
import { MIGRATIONS, migrate } from './migrations.js';
import { openHistoryPool } from './service.js';
import { HistoryStore, type StreamEntry } from './store.js';

let sequence = 0;
/** Stream entries for records, with fresh entry ids in order. */
function entries(...records: HistoryRecord[]): StreamEntry[] {
  return records.map((record) => {
    sequence += 1;
    return { stream: '{t}:q:history', entryId: `${T0}-${sequence}`, record };
  });
}

describe.each(BACKENDS)('HistoryStore on $name', (backend) => {
  let database: TestDatabase;
  let pool: Pool;
  let store: HistoryStore;

  beforeAll(async () => {
    database = await backend.start();
    pool = openHistoryPool(database.url);
    store = new HistoryStore(pool);
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await database?.close();
  });
  beforeEach(async () => {
    await migrate(pool);
    await pool.query('truncate groq_events, groq_deliveries, groq_attempts, groq_replays');
  });

  it('migrates once, however many processes start together, and refuses a newer schema', async () => {
    await pool.query(
      'drop table if exists groq_events, groq_deliveries, groq_attempts, groq_replays, groq_schema_migrations',
    );
    const others = [openHistoryPool(database.url), openHistoryPool(database.url)];
    try {
      const applied = await Promise.all([migrate(pool), ...others.map((p) => migrate(p))]);
      expect(applied.flat()).toEqual(MIGRATIONS.map((m) => m.version));
      const newer = [...MIGRATIONS, { version: 99, name: 'future', sql: 'select 1' }];
      await migrate(pool, newer);
      await expect(migrate(pool)).rejects.toThrow(/schema version 99, newer than this build/);
      await pool.query('delete from groq_schema_migrations where version = 99');
    } finally {
      await Promise.all(others.map((p) => p.end()));
    }
  });

  it('brings an archive of schema 1 forward: its events keep counting from their rows', async () => {
    await pool.query(
      'drop table if exists groq_events, groq_deliveries, groq_attempts, groq_replays, groq_schema_migrations',
    );
    await migrate(pool, MIGRATIONS.slice(0, 1));
    // Rows as schema 1 held them: a failed event, its retry put back by the ingest later.
    await pool.query(
      `insert into groq_events (event_id, type, received_at, payload, status, deliveries, attempts,
         last_error, last_attempt_at)
       values ('evt_old', 'resource.created', to_timestamp(${T0} / 1000.0), '{}', 'received', 2, 2,
         'boom 2', to_timestamp(${T0 + 20} / 1000.0))`,
    );
    await pool.query(
      `insert into groq_attempts (stream, entry_id, event_id, attempt, started_at, ended_at, worker, outcome, error)
       values ('{t}:q:history', '1-1', 'evt_old', 1, to_timestamp(${T0} / 1000.0), to_timestamp(${T0 + 10} / 1000.0), 'w', 'retrying', 'boom 1'),
              ('{t}:q:history', '1-2', 'evt_old', 2, to_timestamp(${T0 + 15} / 1000.0), to_timestamp(${T0 + 20} / 1000.0), 'w', 'failed', 'boom 2')`,
    );
    await pool.query(
      `insert into groq_deliveries (stream, entry_id, event_id, received_at, outcome, key_index)
       values ('{t}:q:history', '1-0', 'evt_old', to_timestamp(${T0} / 1000.0), 'received', 0),
              ('{t}:q:history', '1-3', 'evt_old', to_timestamp(${T0 + 30} / 1000.0), 'requeued', 0)`,
    );
    expect(await migrate(pool)).toEqual(MIGRATIONS.slice(1).map((m) => m.version));
    expect((await store.list({ status: 'received' }, 10)).events.map((e) => e.eventId)).toEqual([
      'evt_old',
    ]);
    // A skipped run after the requeue says less than the failed one; a later completed run wins.
    await store.writeBatch(entries(attempt('evt_old', 3, 'skipped', T0 + 40)));
    expect((await store.show('evt_old'))?.status).toBe('received');
    await store.writeBatch(entries(attempt('evt_old', 3, 'completed', T0 + 50)));
    expect(await store.show('evt_old')).toMatchObject({
      status: 'completed',
      attempts: 4,
      deliveries: 2,
      lastError: null,
    });
  });

  it('two archivers writing batches about the same events at once count every row once', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `evt_both_${i}`);
    const first = entries(...ids.map((id) => received(id)));
    const second = entries(...ids.map((id) => attempt(id, 1, 'completed')));
    const other = openHistoryPool(database.url);
    try {
      await Promise.all([
        store.writeBatch([...first.slice(100), ...second.slice(0, 100)]),
        new HistoryStore(other).writeBatch([...first.slice(0, 100), ...second.slice(100)]),
      ]);
      // The same entries again, by both: nothing changes.
      await Promise.all([store.writeBatch(second), new HistoryStore(other).writeBatch(first)]);
    } finally {
      await other.end();
    }
    const { events } = await store.list({ idPrefix: 'evt_both_' }, 500);
    expect(events).toHaveLength(200);
    const off = events.filter(
      (e) => e.status !== 'completed' || e.attempts !== 1 || e.deliveries !== 1 || e.keyIndex !== 0,
    );
    expect(off).toEqual([]);
  });

  it('keeps each event once with its final status, attempts and deliveries, whatever order and however often batches arrive', async () => {
    const batch = entries(
      received('evt_ok'),
      attempt('evt_ok', 1, 'completed'),
      received('evt_fail'),
      attempt('evt_fail', 1, 'retrying'),
      attempt('evt_fail', 2, 'retrying'),
      attempt('evt_fail', 3, 'failed'),
      received('evt_dup'),
      received('evt_dup', 'resource.created', T0 + 100, 'duplicate'),
      received('evt_dup', 'resource.created', T0 + 200, 'duplicate'),
      attempt('evt_dup', 1, 'completed'),
      received('evt_unknown', 'resource.exploded'),
      attempt('evt_unknown', 1, 'unhandled'),
      received('evt_stale'),
      attempt('evt_stale', 1, 'stale'),
      received('evt_waiting'),
    );
    // Out of order (an attempt archived before its delivery), then everything again.
    await store.writeBatch(batch.slice(1, 2));
    await store.writeBatch(batch);
    await store.writeBatch(batch.slice(3, 9));

    const { events } = await store.list({}, 100);
    const byId = new Map(events.map((e) => [e.eventId, e]));
    expect(events).toHaveLength(6);
    expect(byId.get('evt_ok')).toMatchObject({
      type: 'resource.created',
      status: 'completed',
      attempts: 1,
      deliveries: 1,
      duplicates: 0,
      receivedAt: new Date(T0).toISOString(),
      created: '2026-11-28T09:59:59Z',
      keyIndex: 0,
      lastError: null,
    });
    expect(byId.get('evt_fail')).toMatchObject({
      status: 'failed',
      attempts: 3,
      deliveries: 1,
      lastError: 'boom 3',
    });
    expect(byId.get('evt_dup')).toMatchObject({
      status: 'completed',
      deliveries: 3,
      duplicates: 2,
      attempts: 1,
    });
    expect(byId.get('evt_unknown')).toMatchObject({
      type: 'resource.exploded',
      status: 'unhandled',
    });
    expect(byId.get('evt_stale')?.status).toBe('stale');
    expect(byId.get('evt_waiting')).toMatchObject({ status: 'received', attempts: 0 });

    const shown = await store.show('evt_fail');
    expect(shown?.payload).toBe(received('evt_fail').payload);
    expect(shown?.deliveryList).toEqual([
      { receivedAt: new Date(T0).toISOString(), outcome: 'received', keyIndex: 0 },
    ]);
    expect(shown?.attemptList.map((a) => [a.attempt, a.outcome, a.error, a.durationMs])).toEqual([
      [1, 'retrying', 'boom 1', 5],
      [2, 'retrying', 'boom 2', 5],
      [3, 'failed', 'boom 3', 5],
    ]);
    expect(shown?.attemptList[0]).toMatchObject({ worker: 'groq-worker-test', errorType: 'Error' });
    expect(await store.show('evt_never')).toBeUndefined();
  });

  it('a skipped run does not hide the run that handled it; a requeue after failure is waiting again; replays are recorded', async () => {
    await store.writeBatch(
      entries(
        received('evt_a'),
        attempt('evt_a', 1, 'completed'),
        attempt('evt_a', 1, 'skipped', T0 + 60_000),
        received('evt_b'),
        attempt('evt_b', 1, 'failed'),
        received('evt_b', 'resource.created', T0 + 30_000, 'requeued'),
        received('evt_c'),
        attempt('evt_c', 1, 'completed'),
        attempt('evt_c', 1, 'completed', T0 + 90_000, { replayId: 'rpl_1' }),
        {
          kind: 'replay',
          replayId: 'rpl_1',
          filters: '{"type":"resource.created"}',
          count: 1,
          requestedAt: T0 + 80_000,
        },
      ),
    );
    expect((await store.show('evt_a'))?.status).toBe('completed');
    const b = await store.show('evt_b');
    expect(b).toMatchObject({ status: 'received', deliveries: 2 });
    // The payload is the first one received, not the requeue's.
    expect(b?.receivedAt).toBe(new Date(T0).toISOString());
    const c = await store.show('evt_c');
    expect(c?.attemptList.map((a) => a.replayId)).toEqual([null, 'rpl_1']);
    const { rows } = await pool.query('select replay_id, filters, count from groq_replays');
    expect(rows).toEqual([{ replay_id: 'rpl_1', filters: { type: 'resource.created' }, count: 1 }]);
  });

  it('filters by type, status, time range and id prefix, newest first, with a limit', async () => {
    const records: HistoryRecord[] = [];
    for (let i = 0; i < 10; i++) {
      const id = `evt_${i}`;
      records.push(
        received(id, i % 2 === 0 ? 'resource.created' : 'resource.updated', T0 + i * 60_000),
      );
      if (i < 7)
        records.push(attempt(id, 1, i === 3 ? 'failed' : 'completed', T0 + i * 60_000 + 10));
    }
    records.push(
      received('a_b1', 'resource.deleted', T0),
      received('axb2', 'resource.deleted', T0),
    );
    await store.writeBatch(entries(...records));

    const ids = async (raw: Parameters<typeof parseFilters>[0], limit = 100) =>
      (await store.list(parseFilters(raw), limit)).events.map((e) => e.eventId);
    expect(await ids({ type: 'resource.updated' })).toEqual([
      'evt_9',
      'evt_7',
      'evt_5',
      'evt_3',
      'evt_1',
    ]);
    expect(await ids({ status: 'failed' })).toEqual(['evt_3']);
    expect(await ids({ status: 'received', type: 'resource.created' })).toEqual(['evt_8']);
    expect(await ids({ since: '2026-11-28T10:02:00Z', until: '2026-11-28T10:05:00Z' })).toEqual([
      'evt_4',
      'evt_3',
      'evt_2',
    ]);
    // Without a zone a time is UTC.
    expect(await ids({ since: '2026-11-28T10:08', type: 'resource.created' })).toEqual(['evt_8']);
    // LIKE's wildcards in a prefix are taken literally.
    expect(await ids({ idPrefix: 'a_b' })).toEqual(['a_b1']);
    expect(await ids({ idPrefix: 'evt_%' })).toEqual([]);
    const page = await store.list({}, 3);
    expect(page.events.map((e) => e.eventId)).toEqual(['evt_9', 'evt_8', 'evt_7']);
    expect(page.more).toBe(true);
    expect((await store.list({ status: 'failed' }, 1)).more).toBe(false);
    expect(await store.count({ type: 'resource.created' })).toBe(5);

    const counts = await store.counts(
      parseFilters({ since: '2026-11-28T10:00:00Z', until: '2026-11-28T10:10:00Z' }),
    );
    expect(counts.bucketSeconds).toBe(60);
    expect(counts.buckets).toHaveLength(10);
    expect(counts.buckets[0]).toEqual({
      at: '2026-11-28T10:00:00.000Z',
      counts: { completed: 1, received: 2 },
    });
    expect(counts.buckets[3]?.counts).toEqual({ failed: 1 });
    const day = await store.counts(
      parseFilters({ since: '2026-11-28T00:00:00Z', until: '2026-11-29T00:00:00Z' }),
    );
    expect(day.bucketSeconds).toBe(300);
    expect(day.buckets).toHaveLength(2);
  });

  it('pages the replay selection oldest first by keyset, leaving out events without a payload', async () => {
    const records: HistoryRecord[] = [];
    for (let i = 0; i < 25; i++)
      records.push(received(`evt_${String(i).padStart(2, '0')}`, 'resource.created', T0 + i));
    records.push(attempt('evt_orphan', 1, 'completed'));
    await store.writeBatch(entries(...records));
    const seen: string[] = [];
    let cursor: Parameters<HistoryStore['replayPage']>[1];
    for (;;) {
      const page = await store.replayPage({}, cursor, 10);
      if (page.length === 0) break;
      seen.push(...page.map((c) => c.eventId));
      const last = page.at(-1);
      if (last) cursor = { receivedAt: last.receivedAt, eventId: last.eventId };
    }
    expect(seen).toEqual(records.slice(0, 25).map((r) => (r.kind === 'delivery' ? r.eventId : '')));
    expect(await store.count({})).toBe(26);
  });

  it('prunes events older than the retention in small batches, with their rows, and keeps the rest', async () => {
    const now = Date.now();
    const old = now - 40 * 86_400_000;
    const records: HistoryRecord[] = [];
    for (let i = 0; i < 25; i++) {
      records.push(received(`old_${i}`, 'resource.created', old + i));
      records.push(attempt(`old_${i}`, 1, 'completed', old + i + 1));
    }
    records.push(received('new_1', 'resource.created', now), attempt('new_1', 1, 'completed', now));
    records.push({
      kind: 'replay',
      replayId: 'rpl_old',
      filters: '{}',
      count: 3,
      requestedAt: old,
    });
    await store.writeBatch(entries(...records));
    let pauses = 0;
    const deleted = await store.prune(new Date(now - 30 * 86_400_000), {
      batchSize: 10,
      pause: async () => {
        pauses += 1;
      },
    });
    expect(deleted).toBe(25);
    expect(pauses).toBe(2);
    expect((await store.list({}, 100)).events.map((e) => e.eventId)).toEqual(['new_1']);
    const left = await pool.query<{ n: number }>(
      `select (select count(*) from groq_deliveries)::int + (select count(*) from groq_attempts)::int
         + (select count(*) from groq_replays)::int as n`,
    );
    expect(left.rows[0]?.n).toBe(2);
  });

  // Needs a server the test can stop and a second session: not the embedded store.
  if (backend.name === 'PostgreSQL') {
    it('runs one pruner at a time (an advisory lock held by another process makes it stand aside)', async () => {
      const other = openHistoryPool(database.url);
      const client = await other.connect();
      try {
        await client.query('select pg_advisory_lock(7172017002)');
        expect(await store.prune(new Date())).toBeUndefined();
        await client.query('select pg_advisory_unlock(7172017002)');
        expect(await store.prune(new Date())).toBe(0);
      } finally {
        client.release();
        await other.end();
      }
    });
  }
});
