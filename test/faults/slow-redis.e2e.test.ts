import { rawCommand, waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { reconcile, recoverySeconds } from './support/reconcile.js';
import { faultEvent, faultSender } from './support/sender.js';
import { Stack } from './support/stack.js';

const EVENTS = 600;
const ENQUEUE_TIMEOUT_MS = 500;
const PAUSE_MS = 2000;
/** Slack for a loaded 2-core machine on top of the enqueue deadline. */
const MARGIN_MS = 500;

describe('fault: slow Redis', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('answers 503 within the enqueue deadline while Redis stalls (DEBUG SLEEP, CLIENT PAUSE WRITE), then recovers', async () => {
    const redis = await stack.redis({ appendOnly: true });
    const effectsRedis = await stack.redis();
    const ingest = await stack.ingest(redis.url, {
      ENQUEUE_TIMEOUT_MS: String(ENQUEUE_TIMEOUT_MS),
    });
    await stack.readyWorker(redis.url, effectsRedis.url);

    const events = Array.from({ length: EVENTS }, (_, i) => faultEvent(`evt_slow_${i}`, i % 10));
    const sender = faultSender({ url: ingest.url, concurrency: 8, requestTimeoutMs: 5000 });
    const sending = sender.sendAll(events);
    const windows: { name: string; from: number; to: number }[] = [];

    // Each stall lasts PAUSE_MS, four times the enqueue deadline.
    const stalls: [string, string[]][] = [
      ['DEBUG SLEEP', ['DEBUG', 'SLEEP', String(PAUSE_MS / 1000)]],
      ['CLIENT PAUSE WRITE', ['CLIENT', 'PAUSE', String(PAUSE_MS), 'WRITE']],
    ];
    for (const [index, [name, command]] of stalls.entries()) {
      await waitFor(() => sender.acked() >= ((index + 1) * EVENTS) / 4, {
        timeoutMs: 60_000,
        description: `load before ${name}`,
      });
      const from = Date.now();
      // DEBUG SLEEP answers only when it ends; CLIENT PAUSE at once.
      await rawCommand(redis.port, command, PAUSE_MS + 5000);
      windows.push({ name, from, to: from + PAUSE_MS });
      await waitFor(() => Date.now() >= from + PAUSE_MS, { description: `${name} to end` });
    }
    await sending;
    sender.close();

    const result = await reconcile({
      scenario: 'slow-redis',
      senders: [sender],
      effects: stack.client(effectsRedis.url),
      queue: stack.client(redis.url),
      maxRecoverySeconds: Math.max(...windows.map((w) => recoverySeconds([sender], w.to))),
    });
    const attempts = sender.attempts();
    for (const window of windows) {
      const during = attempts.filter(
        (a) => a.at > window.from + ENQUEUE_TIMEOUT_MS && a.at < window.to,
      );
      const slowest = Math.max(...during.map((a) => a.ms));
      console.log(
        `slow-redis ${window.name}: ${during.length} answers during the stall, all ${[...new Set(during.map((a) => a.status))].join('/')}, slowest ${Math.round(slowest)} ms`,
      );
      // The stall was met: requests were refused with 503, none waited for Redis.
      expect(during.length).toBeGreaterThan(0);
      expect(during.every((a) => a.status === 503)).toBe(true);
    }
    expect(Math.max(...attempts.map((a) => a.ms))).toBeLessThan(ENQUEUE_TIMEOUT_MS + MARGIN_MS);
    expect([...result.statuses.keys()].sort()).toEqual(['200', '503']);
    expect(result.rejected).toEqual([]);
    expect(result.acked).toBe(EVENTS);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.overlaps).toEqual([]);
  }, 120_000);
});
