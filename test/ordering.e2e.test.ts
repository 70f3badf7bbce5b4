import { fileURLToPath } from 'node:url';
import { jobIdFor } from '@groq-webhooks/queue';
import { type RunningProcess, testEnvelope, waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { CRASH_WINDOW_MS } from './faults/support/reconcile.js';
import { faultSender } from './faults/support/sender.js';
import { QUEUE_KEY, queueDrained, Stack } from './faults/support/stack.js';

const HANDLERS = fileURLToPath(new URL('./fixtures/ordering-handlers.mjs', import.meta.url));
const RESOURCES = 200;
const UPDATES = 10;
const WORKER_ENV = {
  HANDLERS_MODULE: HANDLERS,
  LOCK_DURATION_MS: '2000',
  STALLED_INTERVAL_MS: '1000',
  WORKER_CONCURRENCY: '10',
  BACKOFF_BASE_MS: '50',
};
const T0 = Date.UTC(2026, 10, 28, 10);

describe('per-resource ordering across a fleet', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('200 resources × 10 updates, shuffled, over four workers, one SIGKILLed: newest state, no overlap, each event applied once or stale', async () => {
    const [redis, effectsRedis] = [await stack.redis({ appendOnly: true }), await stack.redis()];
    const effects = stack.client(effectsRedis.url);
    const queue = stack.client(redis.url);
    const ingest = await stack.ingest(redis.url);
    const workers: RunningProcess[] = [];
    for (let i = 0; i < 4; i++) {
      workers.push(await stack.readyWorker(redis.url, effectsRedis.url, WORKER_ENV));
    }

    // created strictly increasing per resource; random work; about one event in five fails
    // its first attempt (and is retried with backoff).
    const events = Array.from({ length: RESOURCES }, (_, r) =>
      Array.from({ length: UPDATES }, (_, u) =>
        testEnvelope({
          id: `evt_order_${r}_${u}`,
          type: 'resource.updated',
          created: new Date(T0 + u * 1000).toISOString(),
          data: {
            id: `res_${r}`,
            ms: Math.floor(Math.random() * 30),
            fail_first: Math.random() < 0.2,
          },
        }),
      ),
    ).flat();
    shuffle(events);
    const sender = faultSender({ url: ingest.url, concurrency: 20 });
    const sending = sender.sendAll(events);

    // One worker SIGKILLed mid-run, once a quarter of the events were applied.
    await waitFor(async () => (await effects.hlen('state')) >= RESOURCES / 4, {
      timeoutMs: 60_000,
    });
    const victim = workers[0] as RunningProcess;
    await victim.kill();
    const killedAt = Date.now();
    await sending;
    sender.close();
    expect(sender.acked()).toBe(events.length);
    await waitFor(() => queueDrained(queue), { timeoutMs: 90_000, description: 'queue drained' });

    expect(await queue.zcard(`${QUEUE_KEY}:failed`)).toBe(0);
    expect(await effects.smembers('overlaps')).toEqual([]);
    // Every resource ends in the state of its newest event.
    const state = await effects.hgetall('state');
    const newest = new Date(T0 + (UPDATES - 1) * 1000).toISOString();
    const wrong = Object.entries(state).filter(([, created]) => created !== newest);
    expect(Object.keys(state)).toHaveLength(RESOURCES);
    expect(wrong).toEqual([]);

    // Each event was applied once or completed as stale (a second application only when the
    // first ran on the killed worker just before the kill: SPEC §6's crash window).
    const lines = workers.flatMap((worker) => worker.logLines());
    const stale = new Set(
      lines.filter((line) => line.outcome === 'stale').map((line) => String(line.eventId)),
    );
    const skippedDone = new Set(
      lines
        .filter(
          (line) => line.outcome === 'skipped-done' && Date.parse(String(line.time)) >= killedAt,
        )
        .map((line) => String(line.eventId)),
    );
    let applied = 0;
    let staleCount = 0;
    let killWindow = 0;
    let unlogged = 0;
    for (const event of events) {
      const runs = await effects.lrange(`applied:${event.id}`, 0, -1);
      if (runs.length === 0) {
        if (!stale.has(event.id)) {
          // Completed without running and without a stale line: only the SIGKILLed worker may
          // do that. It marked the event done as stale and died before its turn's log lines were
          // written; then either its completion reached Redis (BullMQ notes which worker took the
          // job) or it did not, and the worker that took the stalled job found it done.
          const job = `${QUEUE_KEY}:${jobIdFor(event.id)}`;
          const [finishedOn, processedBy] = await queue.hmget(job, 'finishedOn', 'pb');
          expect(finishedOn, `${event.id} neither applied nor stale`).not.toBeNull();
          if (!skippedDone.has(event.id)) {
            expect(processedBy, `${event.id} neither applied nor stale`).toBe(
              `groq-worker-${victim.pid}`,
            );
          }
          unlogged++;
        }
        staleCount++;
        continue;
      }
      applied++;
      for (const run of runs.slice(0, -1)) {
        const [pid, at] = run.split('@');
        expect(Number(pid)).toBe(victim.pid);
        expect(killedAt - Number(at)).toBeLessThan(CRASH_WINDOW_MS);
        killWindow++;
      }
    }
    console.log(
      `ordering: resources=${RESOURCES} events=${events.length} applied=${applied} stale=${staleCount} (unlogged_by_killed_worker=${unlogged}) duplicated_by_kill_window=${killWindow} failed=0 overlaps=0 wrong_final_state=${wrong.length}`,
    );
    expect(applied + staleCount).toBe(events.length);
  }, 180_000);
});

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
}
