import { waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { reconcile } from './support/reconcile.js';
import { type FaultEvent, faultEvent, faultSender } from './support/sender.js';
import { QUEUE_KEY, queueDrained, Stack } from './support/stack.js';

const EVENTS = 100;
const COPIES = 20;

describe('fault: duplicate storm', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('handles 100 events once each when every one is sent 20 times, concurrently, across two ingests, twice', async () => {
    const redis = await stack.redis({ appendOnly: true });
    const effectsRedis = await stack.redis();
    const ingests = [await stack.ingest(redis.url), await stack.ingest(redis.url)];
    await stack.readyWorker(redis.url, effectsRedis.url);
    await stack.readyWorker(redis.url, effectsRedis.url);

    // Handlers take 200 ms, so copies arrive before, during and after each event's handling.
    const events = Array.from({ length: EVENTS }, (_, i) => faultEvent(`evt_storm_${i}`, 200));
    const copies: FaultEvent[] = events.flatMap((event) =>
      Array.from({ length: COPIES }, () => event),
    );
    shuffle(copies);
    const pick = () => ingests[Math.floor(Math.random() * ingests.length)]?.url ?? '';
    const effects = stack.client(effectsRedis.url);
    const queue = stack.client(redis.url);
    const storm = faultSender({ url: pick, concurrency: 40 });
    await storm.sendAll(copies);
    storm.close();

    // Then the completed jobs are trimmed (as retention does after an hour) and the storm comes
    // again: only the 7-day idempotency record stands between these redeliveries and a rerun.
    await waitFor(async () => (await effects.hlen('effects')) === EVENTS && queueDrained(queue), {
      timeoutMs: 30_000,
      description: 'first storm handled',
    });
    const completed = await queue.zrange(`${QUEUE_KEY}:completed`, '0', '-1');
    expect(completed).toHaveLength(EVENTS);
    for (const jobId of completed) {
      await queue.del(`${QUEUE_KEY}:${jobId}`);
      await queue.zrem(`${QUEUE_KEY}:completed`, jobId);
    }
    shuffle(copies);
    const again = faultSender({ url: pick, concurrency: 40 });
    await again.sendAll(copies);
    again.close();

    const result = await reconcile({
      scenario: 'duplicate-storm',
      senders: [storm, again],
      effects,
      queue,
      maxRecoverySeconds: 0,
    });
    const duplicateAnswers = [storm, again]
      .flatMap((sender) => sender.attempts())
      .filter((attempt) => attempt.duplicate).length;
    console.log(`duplicate-storm: ${duplicateAnswers} of ${result.acked} 2xx said duplicate`);
    expect(result.sent).toBe(2 * EVENTS * COPIES);
    expect(result.acked).toBe(2 * EVENTS * COPIES);
    // Every redelivery after the trim was recognised as handled, not enqueued again.
    expect(again.attempts().every((attempt) => attempt.duplicate)).toBe(true);
    expect(result.effects).toBe(EVENTS);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.overlaps).toEqual([]);
    expect(duplicateAnswers).toBeGreaterThan(0);
  }, 120_000);
});

function shuffle<T>(items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const a = items[i] as T;
    items[i] = items[j] as T;
    items[j] = a;
  }
}
