import { freePort, waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { reconcile, recoverySeconds } from './support/reconcile.js';
import { faultEvent, faultSender } from './support/sender.js';
import { Stack } from './support/stack.js';

describe('fault: Redis outage before start', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('ingest and worker start without Redis, answer 503 meanwhile and work once it appears, without a restart', async () => {
    const effectsRedis = await stack.redis();
    const port = await freePort();
    const redisUrl = `redis://127.0.0.1:${port}`;
    const ingest = await stack.ingest(redisUrl, { ENQUEUE_TIMEOUT_MS: '1000' });
    const worker = stack.worker(redisUrl, effectsRedis.url, { LOG_LEVEL: 'info' });

    expect((await fetch(`http://127.0.0.1:${ingest.port}/readyz`)).status).toBe(503);
    const sender = faultSender({ url: ingest.url, concurrency: 8, requestTimeoutMs: 3000 });
    const events = Array.from({ length: 300 }, (_, i) => faultEvent(`evt_outage_${i}`, i % 20));
    const sending = sender.sendAll(events);
    // Traffic meets the outage first: every event so far has been refused at least once.
    await waitFor(() => sender.attempts().length >= 16, {
      timeoutMs: 10_000,
      description: 'refused attempts during the outage',
    });
    expect(sender.attempts().every((attempt) => attempt.status === 503)).toBe(true);
    await worker.waitForOutput('Redis is not reachable yet', 10_000);

    const appeared = Date.now();
    const redis = await stack.redis({ port, appendOnly: true });
    await worker.waitForOutput('Worker ready', 30_000);
    await sending;
    sender.close();

    const queue = stack.client(redis.url);
    const result = await reconcile({
      scenario: 'redis-outage-at-start',
      senders: [sender],
      effects: stack.client(effectsRedis.url),
      queue,
      maxRecoverySeconds: recoverySeconds([sender], appeared),
    });
    expect(result.rejected).toEqual([]);
    expect(result.acked).toBe(events.length);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.overlaps).toEqual([]);
    expect([...result.statuses.keys()].sort()).toEqual(['200', '503']);
    expect(result.hangs).toBe(0);
    // Neither process was restarted to get there.
    expect(worker.child.exitCode).toBeNull();
    expect(ingest.process.child.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${ingest.port}/readyz`)).status).toBe(200);
  }, 120_000);
});
