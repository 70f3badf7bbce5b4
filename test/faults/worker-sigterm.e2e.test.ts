import { type RunningProcess, waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { reconcile } from './support/reconcile.js';
import { faultEvent, faultSender } from './support/sender.js';
import { QUEUE_KEY, queueDrained, Stack } from './support/stack.js';

const EVENTS = 1000;
const WORKER_ENV = {
  LOCK_DURATION_MS: '2000',
  STALLED_INTERVAL_MS: '1000',
  WORKER_CONCURRENCY: '20',
  // Shorter than the longest handlers: some are aborted at the grace period and put back.
  SHUTDOWN_GRACE_MS: '300',
};

describe('fault: worker SIGTERM under load (rolling restarts)', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('exits 0 each time, and every event is handled exactly once', async () => {
    const redis = await stack.redis({ appendOnly: true });
    const effectsRedis = await stack.redis();
    const effects = stack.client(effectsRedis.url);
    const queue = stack.client(redis.url);
    const ingest = await stack.ingest(redis.url);
    const workers: RunningProcess[] = [
      await stack.readyWorker(redis.url, effectsRedis.url, WORKER_ENV),
      await stack.readyWorker(redis.url, effectsRedis.url, WORKER_ENV),
    ];
    const events = Array.from({ length: EVENTS }, (_, i) =>
      faultEvent(`evt_term_w_${i}`, 50 + ((i * 53) % 700)),
    );
    const sender = faultSender({ url: ingest.url, concurrency: 16 });
    let sent = false;
    const sending = sender.sendAll(events).finally(() => {
      sent = true;
    });
    const exits: (number | string)[] = [];
    let putBack = 0;
    const stopSeconds: number[] = [];
    let restarts = 0;
    while (restarts < 4 || !(sent && (await queueDrained(queue)))) {
      await waitFor(async () => (await effects.hlen('effects')) >= (restarts + 1) * 100, {
        timeoutMs: 60_000,
        description: 'progress before the next restart',
      }).catch(() => undefined);
      const index = restarts % workers.length;
      const old = workers[index];
      if (old === undefined) break;
      // Rolling: the replacement is up before the old one is told to stop.
      workers[index] = await stack.readyWorker(redis.url, effectsRedis.url, WORKER_ENV);
      const stopping = Date.now();
      exits.push(await old.stop('SIGTERM', 20_000));
      stopSeconds.push((Date.now() - stopping) / 1000);
      putBack += old.logLines().filter((line) => line.outcome === 'delayed-shutdown').length;
      restarts++;
      if (restarts >= 8) break;
    }
    await sending;
    sender.close();
    const result = await reconcile({
      scenario: 'worker-sigterm',
      senders: [sender],
      effects,
      queue,
      // Here: the longest SIGTERM-to-exit, bounded by the grace period plus closing.
      maxRecoverySeconds: Math.max(...stopSeconds),
    });
    console.log(
      `worker-sigterm: ${restarts} rolling restarts, exit codes ${exits.join(' ')}, ${putBack} handlers aborted at the grace period and put back`,
    );
    expect(exits.every((code) => code === 0)).toBe(true);
    // The grace period did cut handlers short, so the put-back path was exercised.
    expect(putBack).toBeGreaterThan(0);
    expect(result.acked).toBe(EVENTS);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.overlaps).toEqual([]);
    expect(await queue.zcard(`${QUEUE_KEY}:failed`)).toBe(0);
  }, 180_000);
});
