import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres } from '@groq-webhooks/local';
import {
  type RunningProcess,
  startPostgres,
  startProcess,
  type TestEnvelope,
  type TestPostgres,
  testEnvelope,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { faultSender } from './faults/support/sender.js';
import { queueDrained, Stack } from './faults/support/stack.js';
import { ENTRY, ROOT } from './support/paths.js';

const HANDLERS = fileURLToPath(new URL('./fixtures/history-handlers.mjs', import.meta.url));
/** The attempt budget and backoff are set on the jobs by the ingest. */
const JOB_ENV = { JOB_ATTEMPTS: '2', BACKOFF_BASE_MS: '50' };
const WORKER_ENV = { ...JOB_ENV, HANDLERS_MODULE: HANDLERS, WORKER_CONCURRENCY: '20' };

/** What `events show --json` prints (the fields these tests read). */
interface Shown {
  eventId: string;
  type: string;
  status: string;
  deliveries: number;
  duplicates: number;
  attempts: number;
  payload: string | null;
  attemptList: {
    attempt: number;
    outcome: string;
    error: string | null;
    replayId: string | null;
  }[];
}

/** A history database for one suite: a throwaway PostgreSQL server, or the embedded one. */
interface Store {
  url: string;
  server: TestPostgres | undefined;
  close(): Promise<void>;
}

const STORES: { name: string; open(): Promise<Store> }[] = [
  {
    name: 'PostgreSQL',
    async open() {
      const server = await startPostgres();
      const url = await server.createDatabase('groq_history_e2e');
      return { url, server, close: () => server.cleanup() };
    },
  },
  {
    name: 'embedded PGlite',
    async open() {
      const embedded = await startEmbeddedPostgres();
      return { url: embedded.url, server: undefined, close: () => embedded.close() };
    },
  },
];

describe.each(STORES)('the event history on $name, through real processes', (store) => {
  const stack = new Stack();
  let database: Store;
  afterAll(async () => {
    await stack?.cleanup();
    await database?.close();
  });

  /** Runs the CLI against the stack's Redis and the history database; its JSON output. */
  async function cli(redisUrl: string, ...args: string[]): Promise<RunningProcess> {
    const child = startProcess(process.execPath, [ENTRY.cli, ...args], {
      cwd: ROOT,
      env: {
        REDIS_URL: redisUrl,
        ARCHIVE_DATABASE_URL: database.url,
        GROQ_LOCAL_DIR: '/nonexistent',
      },
    });
    const code = await child.exited;
    expect(code, child.output()).toBe(0);
    return child;
  }

  async function show(redisUrl: string, eventId: string): Promise<Shown | undefined> {
    const child = startProcess(process.execPath, [ENTRY.cli, 'events', 'show', eventId, '--json'], {
      cwd: ROOT,
      env: { REDIS_URL: redisUrl, ARCHIVE_DATABASE_URL: database.url },
    });
    return (await child.exited) === 0 ? (JSON.parse(child.output()) as Shown) : undefined;
  }

  it('keeps every accepted event once, with its deliveries, attempts and final status', async () => {
    database = await store.open();
    const redis = await stack.redis();
    const effectsRedis = await stack.redis();
    const env = { ARCHIVE_DATABASE_URL: database.url };
    const ingest = await stack.ingest(redis.url, { ...JOB_ENV, ...env });
    await stack.readyWorker(redis.url, effectsRedis.url, { ...WORKER_ENV, ...env });

    const ok = testEnvelope({ data: { id: 'res_h_ok' } });
    const duplicate = testEnvelope({ data: { id: 'res_h_dup' } });
    const retried = testEnvelope({
      type: 'resource.updated',
      data: { id: 'res_h_retry', fail: 'first' },
    });
    const failed = testEnvelope({ data: { id: 'res_h_fail', fail: 'always' } });
    const unknown = testEnvelope({ type: 'invoice.paid', data: { amount: 3 } });
    const sender = faultSender({ url: ingest.url, concurrency: 1 });
    await sender.sendAll([ok, duplicate, retried, failed, unknown]);
    await waitFor(() => queueDrained(stack.client(redis.url)), { timeoutMs: 20_000 });
    await sender.sendAll([duplicate]);
    sender.close();

    const expectations: [TestEnvelope, Partial<Shown>, string[]][] = [
      [ok, { status: 'completed', deliveries: 1, duplicates: 0, attempts: 1 }, ['completed']],
      [
        duplicate,
        { status: 'completed', deliveries: 2, duplicates: 1, attempts: 1 },
        ['completed'],
      ],
      [retried, { status: 'completed', deliveries: 1, attempts: 2 }, ['retrying', 'completed']],
      [failed, { status: 'failed', deliveries: 1, attempts: 2 }, ['retrying', 'failed']],
      [unknown, { status: 'unhandled', deliveries: 1, attempts: 1 }, ['unhandled']],
    ];
    for (const [event, summary, outcomes] of expectations) {
      const shown = await waitFor(
        async () => {
          const found = await show(redis.url, event.id);
          return found !== undefined &&
            found.deliveries === summary.deliveries &&
            found.attemptList.length === outcomes.length
            ? found
            : undefined;
        },
        { timeoutMs: 20_000, description: `${event.id} archived` },
      );
      expect(shown).toMatchObject({ eventId: event.id, type: event.type, ...summary });
      expect(shown.attemptList.map((attempt) => attempt.outcome)).toEqual(outcomes);
      // The payload exactly as it was sent.
      expect(shown.payload).toBe(JSON.stringify(event));
    }
    const failedShown = await show(redis.url, failed.id);
    expect(failedShown?.attemptList[1]?.error).toContain('handler refused');

    const list = await cli(redis.url, 'events', 'list', '--status', 'failed', '--json');
    expect(
      (JSON.parse(list.output()) as { events: { eventId: string }[] }).events.map((e) => e.eventId),
    ).toEqual([failed.id]);
  }, 120_000);

  it('replays a type and time range: each match once more, --dry-run changes nothing, a second replay runs them again', async () => {
    const redis = await stack.redis();
    const effectsRedis = await stack.redis();
    const effects = stack.client(effectsRedis.url);
    const env = { ARCHIVE_DATABASE_URL: database.url };
    const ingest = await stack.ingest(redis.url, { ...JOB_ENV, ...env });
    await stack.readyWorker(redis.url, effectsRedis.url, { ...WORKER_ENV, ...env });
    // Replays are of past events; give these a type of their own within this database.
    const updates = Array.from({ length: 30 }, (_, i) =>
      testEnvelope({ type: 'resource.deleted', data: { id: `res_replay_${i}` } }),
    );
    const others = Array.from({ length: 10 }, (_, i) =>
      testEnvelope({ data: { id: `res_other_${i}` } }),
    );
    const since = new Date(Date.now() - 1000).toISOString();
    const sender = faultSender({ url: ingest.url, concurrency: 8 });
    await sender.sendAll([...updates, ...others]);
    sender.close();
    const until = new Date(Date.now() + 1000).toISOString();
    await waitFor(async () => (await effects.hlen('effects')) === 40, { timeoutMs: 20_000 });
    // Archived before the replay can select them.
    await waitFor(
      async () => (await show(redis.url, updates[29]?.id ?? ''))?.status === 'completed',
      {
        timeoutMs: 20_000,
      },
    );
    const filters = ['--type', 'resource.deleted', '--since', since, '--until', until];

    const dry = await cli(redis.url, 'events', 'replay', ...filters, '--dry-run');
    expect(dry.output()).toMatch(/\b30\b/);
    expect(await effects.hvals('effects')).toEqual(Array(40).fill('1'));

    for (const run of [2, 3]) {
      await cli(redis.url, 'events', 'replay', ...filters, '--yes');
      await waitFor(
        async () => {
          const counts = await Promise.all(
            updates.map((event) => effects.hget('effects', event.id)),
          );
          return counts.every((count) => count === String(run));
        },
        { timeoutMs: 30_000, description: `replay ${run - 1} ran every match` },
      );
      await waitFor(() => queueDrained(stack.client(redis.url)), { timeoutMs: 20_000 });
    }
    // Exactly the matches, exactly once per replay.
    for (const event of updates) expect(await effects.hget('effects', event.id)).toBe('3');
    for (const event of others) expect(await effects.hget('effects', event.id)).toBe('1');
    const shown = await waitFor(
      async () => {
        const found = await show(redis.url, updates[0]?.id ?? '');
        return found?.attemptList.length === 3 ? found : undefined;
      },
      { timeoutMs: 20_000 },
    );
    const replays = shown.attemptList.map((attempt) => attempt.replayId);
    expect(replays[0]).toBeNull();
    expect(new Set(replays.slice(1)).size).toBe(2);
  }, 120_000);
});

describe('the event history while PostgreSQL is down', () => {
  const stack = new Stack();
  let server: TestPostgres;
  afterAll(async () => {
    await stack?.cleanup();
    await server?.cleanup();
  });

  it('handles at full speed through a 20 s outage, then archives every event once', async () => {
    server = await startPostgres();
    const url = await server.createDatabase('groq_history_outage');
    const redis = await stack.redis();
    const effectsRedis = await stack.redis();
    const effects = stack.client(effectsRedis.url);
    const env = { ARCHIVE_DATABASE_URL: url };
    const ingest = await stack.ingest(redis.url, { ...JOB_ENV, ...env });
    await stack.readyWorker(redis.url, effectsRedis.url, { ...WORKER_ENV, ...env });

    // 40 events a second for 30 s; PostgreSQL is stopped from 5 s to 25 s.
    const sender = faultSender({ url: ingest.url, concurrency: 16 });
    const events: TestEnvelope[] = [];
    const started = Date.now();
    const sending = (async () => {
      for (let second = 0; second < 30; second++) {
        const batch = Array.from({ length: 40 }, (_, i) =>
          testEnvelope({ data: { id: `res_${events.length + i}` } }),
        );
        events.push(...batch);
        await sender.sendAll(batch);
        // The sender's pace, not synchronisation.
        await new Promise((resolve) =>
          setTimeout(resolve, Math.max(0, started + (second + 1) * 1000 - Date.now())),
        );
      }
    })();
    await waitFor(() => Date.now() - started >= 5000, { timeoutMs: 10_000, intervalMs: 50 });
    await server.stop();
    const atStop = { sent: events.length, handled: await effects.hlen('effects') };
    await waitFor(() => Date.now() - started >= 25_000, { timeoutMs: 30_000, intervalMs: 100 });
    const atStart = { sent: events.length, handled: await effects.hlen('effects') };
    await server.start();
    await sending;
    sender.close();

    // Handling went on: what was sent during the outage was handled during it.
    const sentDuring = atStart.sent - atStop.sent;
    console.log(
      `history outage: sent during ${sentDuring}, handled during ${atStart.handled - atStop.handled}`,
    );
    expect(atStart.handled - atStop.handled).toBeGreaterThanOrEqual(sentDuring * 0.8);
    const statuses = sender.attempts().map((attempt) => attempt.status);
    expect(statuses.every((status) => status === 200)).toBe(true);
    await waitFor(async () => (await effects.hlen('effects')) === events.length, {
      timeoutMs: 30_000,
    });
    expect((await effects.hvals('effects')).every((count) => count === '1')).toBe(true);

    // Everything handled meanwhile reaches the history once it is back, and nothing twice.
    const rows = await waitFor(
      async () => {
        const found = await server.query<{ n: number; once: number }>(
          `select count(*)::int as n,
                  count(*) filter (where deliveries = 1 and attempts = 1 and status = 'completed')::int as once
             from groq_events`,
          [],
          url,
        );
        return found[0]?.n === events.length && found[0]?.once === events.length
          ? found[0]
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, description: 'every event archived once' },
    );
    expect(rows.n).toBe(events.length);
  }, 150_000);
});
