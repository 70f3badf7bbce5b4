import { waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { reconcile, recoverySeconds } from './support/reconcile.js';
import { faultEvent, faultSender } from './support/sender.js';
import { Stack } from './support/stack.js';

const EVENTS = 1500;
const ENQUEUE_TIMEOUT_MS = 1000;
/** Slack for a loaded 2-core machine on top of the enqueue deadline. */
const MARGIN_MS = 750;

describe('fault: Redis crash (kill -9) with AOF', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  // kill -9 is a process crash: what Redis wrote to the AOF before answering is in the OS page
  // cache and survives, under `everysec` as under `always`. Only an OS crash or power loss can
  // take the last second of `everysec` writes, which no test here can cause; `always` covers it.
  it.each(['everysec', 'always'])(
    'appendfsync %s: answers 503 promptly while Redis is down and, with a retrying sender, loses nothing',
    async (fsync) => {
      let redis = await stack.redis({ appendOnly: true, args: ['--appendfsync', fsync] });
      const effectsRedis = await stack.redis();
      expect(await stack.client(redis.url).config('GET', 'appendfsync')).toEqual([
        'appendfsync',
        fsync,
      ]);
      const ingest = await stack.ingest(redis.url, {
        ENQUEUE_TIMEOUT_MS: String(ENQUEUE_TIMEOUT_MS),
      });
      // Default lock (15 s): the outage is shorter, so in-flight jobs keep their locks and claims.
      await stack.readyWorker(redis.url, effectsRedis.url);
      await stack.readyWorker(redis.url, effectsRedis.url);

      const events = Array.from({ length: EVENTS }, (_, i) =>
        faultEvent(`evt_crash_${i}`, 50 + ((i * 37) % 200)),
      );
      const sender = faultSender({ url: ingest.url, concurrency: 16 });
      const sending = sender.sendAll(events);

      await waitFor(() => sender.acked() >= EVENTS / 3, { timeoutMs: 60_000, description: 'load' });
      await redis.kill();
      const crashedAt = Date.now();
      // Down long enough for the sender to meet the outage many times over.
      await waitFor(
        () => sender.attempts().filter((a) => a.at > crashedAt && a.status === 503).length >= 100,
        { timeoutMs: 20_000, description: '503s while Redis is down' },
      );
      expect((await fetch(`http://127.0.0.1:${ingest.port}/readyz`)).status).toBe(503);
      const downMs = Date.now() - crashedAt;
      redis = stack.adopt(await redis.restart());
      const restartedAt = Date.now();
      await sending;
      sender.close();

      const result = await reconcile({
        scenario: `redis-crash-aof-${fsync}`,
        senders: [sender],
        effects: stack.client(effectsRedis.url),
        queue: stack.client(redis.url),
        maxRecoverySeconds: recoverySeconds([sender], restartedAt),
      });
      // Handlers that finished while Redis was down: their done-marks had to wait for it.
      const effects = stack.client(effectsRedis.url);
      let finishedWhileDown = 0;
      for (const id of Object.keys(await effects.hgetall('effects'))) {
        for (const run of await effects.lrange(`runs:${id}`, 0, -1)) {
          const at = Number(run.split('@')[2]);
          if (at >= crashedAt && at <= restartedAt) finishedWhileDown++;
        }
      }
      const attempts = sender.attempts();
      const slowest = Math.max(...attempts.map((attempt) => attempt.ms));
      console.log(
        `redis-crash-aof-${fsync}: down ${downMs} ms, ${finishedWhileDown} handlers finished meanwhile, slowest answer ${Math.round(slowest)} ms, statuses ${JSON.stringify(Object.fromEntries(result.statuses))}`,
      );
      // The crash met handlers in flight (their done-marks waited for Redis to return).
      expect(finishedWhileDown).toBeGreaterThan(0);
      expect(result.rejected).toEqual([]);
      expect(result.acked).toBe(EVENTS);
      expect(result.lost).toEqual([]);
      expect(result.duplicated).toEqual([]);
      expect(result.unexpected).toEqual([]);
      expect(result.overlaps).toEqual([]);
      // Only 200 and 503: never a 500, never a dropped connection, never an answer past the deadline.
      expect([...result.statuses.keys()].sort()).toEqual(['200', '503']);
      expect(slowest).toBeLessThan(ENQUEUE_TIMEOUT_MS + MARGIN_MS);
    },
    180_000,
  );
});
