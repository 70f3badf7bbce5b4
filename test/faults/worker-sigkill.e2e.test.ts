import { type RunningProcess, waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { reconcile } from './support/reconcile.js';
import { faultEvent, faultSender } from './support/sender.js';
import { QUEUE_KEY, queueDrained, Stack } from './support/stack.js';

const EVENTS = 2000;
const WORKER_ENV = {
  LOCK_DURATION_MS: '2000',
  STALLED_INTERVAL_MS: '1000',
  WORKER_CONCURRENCY: '20',
};

describe('fault: worker SIGKILL under load', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('loses nothing and runs nothing twice while workers are SIGKILLed every ~2 s', async () => {
    const [redis, effectsRedis] = [await stack.redis({ appendOnly: true }), await stack.redis()];
    const effects = stack.client(effectsRedis.url);
    const queue = stack.client(redis.url);
    const ingest = await stack.ingest(redis.url);
    const workers: RunningProcess[] = [
      await stack.readyWorker(redis.url, effectsRedis.url, WORKER_ENV),
      await stack.readyWorker(redis.url, effectsRedis.url, WORKER_ENV),
    ];

    // Handlers of varied duration, 50-550 ms, spread so every kill interrupts some of them.
    const events = Array.from({ length: EVENTS }, (_, i) =>
      faultEvent(`evt_kill_${i}`, 50 + ((i * 97) % 500)),
    );
    const sender = faultSender({ url: ingest.url, concurrency: 16 });
    let sent = false;
    const sending = sender.sendAll(events).finally(() => {
      sent = true;
    });

    const kills = new Map<number, number>();
    const recoveries: Promise<number>[] = [];
    let interrupted = 0;
    // Kill while there is work to interrupt, at least five times.
    while (kills.size < 5 || !(sent && (await queueDrained(queue)))) {
      await pauseAround(2000);
      const victimIndex = Math.floor(Math.random() * workers.length);
      const victim = workers[victimIndex];
      if (victim === undefined) continue;
      await victim.kill();
      const killedAt = Date.now();
      kills.set(victim.pid, killedAt);
      const orphans = await effects.hkeys(`inflight:${victim.pid}`);
      interrupted += orphans.length;
      recoveries.push(recoveryOf(orphans, killedAt));
      workers[victimIndex] = stack.worker(redis.url, effectsRedis.url, WORKER_ENV);
      if (kills.size >= 12) break;
    }
    await sending;
    sender.close();

    const times = await Promise.all(recoveries);
    const result = await reconcile({
      scenario: 'worker-sigkill',
      senders: [sender],
      effects,
      queue,
      maxRecoverySeconds: Math.max(0, ...times),
      kills,
    });
    console.log(
      `worker-sigkill: ${kills.size} kills interrupted ${interrupted} running handlers; seconds until each kill's interrupted events completed elsewhere: ${times.map((t) => t.toFixed(1)).join(' ')}`,
    );
    expect(kills.size).toBeGreaterThanOrEqual(5);
    expect(interrupted).toBeGreaterThan(0);
    expect(result.acked).toBe(EVENTS);
    expect(result.lost).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.overlaps).toEqual([]);
    // A rerun is allowed only where SPEC §6 allows it: the worker died between the handler's
    // effect and "marked done". Anything else (two live workers, a lost done-mark) fails here.
    const unexplained = result.duplicated.filter((id) => !result.duplicatedByKill.includes(id));
    expect(unexplained).toEqual([]);
    // SPEC §6 promises pickup within 30 s at default intervals; here (2 s lock, 1 s stall check)
    // this is the time until the victim's interrupted events completed elsewhere, backlog included.
    expect(Math.max(...times)).toBeLessThan(30);
    // No job was failed by the kills (BullMQ's maxStalledCount would have done that).
    expect(await queue.zcard(`${QUEUE_KEY}:failed`)).toBe(0);

    /** Seconds until every event the victim held has its effect (0 when it held none; never rejects). */
    async function recoveryOf(ids: string[], since: number): Promise<number> {
      if (ids.length === 0) return 0;
      const recovered = await waitFor(
        async () => {
          const counts = await effects.hmget('effects', ...ids);
          return counts.every((count) => count !== null);
        },
        { timeoutMs: 60_000, intervalMs: 50, description: `recovery of ${ids.length} orphans` },
      ).then(
        () => true,
        () => false,
      );
      return recovered ? (Date.now() - since) / 1000 : Number.POSITIVE_INFINITY;
    }
  }, 240_000);
});

/** The kill schedule's randomised interval (the fault injection's clock, not synchronisation). */
function pauseAround(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms * (0.75 + Math.random() / 2)));
}
