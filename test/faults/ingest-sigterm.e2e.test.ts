import { waitFor } from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { reconcile, recoverySeconds } from './support/reconcile.js';
import { faultEvent, faultSender } from './support/sender.js';
import { Stack } from './support/stack.js';

const EVENTS = 1500;
/** Keep-alive connections of the sender, all busy when SIGTERM comes. */
const CONNECTIONS = 32;
/** A request written into an idle socket at the instant of a sweep is reset: HTTP/1.1 race. */
const MAX_RACE_RESETS = 2;

describe('fault: ingest SIGTERM under load', () => {
  const stack = new Stack();
  afterAll(() => stack?.cleanup());

  it('finishes in-flight requests, exits 0, and every 2xx it gave is handled once', async () => {
    const redis = await stack.redis({ appendOnly: true });
    const effectsRedis = await stack.redis();
    // Info level: the ingest logs every request it finished, with its event id.
    const first = await stack.ingest(redis.url, { LOG_LEVEL: 'info' });
    await stack.readyWorker(redis.url, effectsRedis.url);

    const events = Array.from({ length: EVENTS }, (_, i) => faultEvent(`evt_term_${i}`, i % 10));
    // Keep-alive sockets and 32 requests in flight, as a busy sender has.
    const sender = faultSender({ url: first.url, concurrency: CONNECTIONS });
    const sending = sender.sendAll(events);
    await waitFor(() => sender.acked() >= EVENTS / 3, { timeoutMs: 60_000, description: 'load' });

    const terminatedAt = Date.now();
    const exitCode = await first.process.stop('SIGTERM', 20_000);
    const exitedAt = Date.now();
    // A rolling restart: the replacement takes the same port.
    await stack.ingest(redis.url, {}, first.port);
    await sending;
    sender.close();

    const result = await reconcile({
      scenario: 'ingest-sigterm',
      senders: [sender],
      effects: stack.client(effectsRedis.url),
      queue: stack.client(redis.url),
      maxRecoverySeconds: recoverySeconds([sender], exitedAt),
    });
    const attempts = sender.attempts();
    const inFlight = attempts.filter((a) => a.at - a.ms < terminatedAt && a.at >= terminatedAt);
    const finished = new Map<string, number>();
    for (const line of first.process.logLines()) {
      if (typeof line.eventId === 'string' && typeof line.status === 'number') {
        finished.set(line.eventId, (finished.get(line.eventId) ?? 0) + 1);
      }
    }
    console.log(
      `ingest-sigterm: exit ${exitCode} after ${exitedAt - terminatedAt} ms (it logged ${[...finished.values()].reduce((sum, n) => sum + n, 0)} finished requests), ${inFlight.length} requests in flight at SIGTERM: ${JSON.stringify(countBy(inFlight))}; all answers ${JSON.stringify(Object.fromEntries(result.statuses))}`,
    );
    expect(exitCode).toBe(0);
    expect(inFlight.length).toBeGreaterThan(0);
    // No answer was lost: for every event, the first ingest finished no more requests than the
    // sender got answers from it. (A reset after the ingest handled a request would hide a 200.)
    const hidden = sender.deliveries.filter(
      (d) =>
        (finished.get(d.id) ?? 0) >
        d.attempts.filter((a) => a.status !== undefined && a.at <= exitedAt).length,
    );
    expect(hidden.map((d) => d.id)).toEqual([]);
    // Only 200/503 answers; the failures are refused connections while no ingest listened, and
    // resets of requests the ingest never read (checked above).
    for (const status of result.statuses.keys()) {
      expect(['200', '503', 'error:ECONNREFUSED', 'error:ECONNRESET']).toContain(status);
    }
    // Answers given while draining say `Connection: close`, and idle keep-alive sockets stay open
    // until the first sweep, so the sender's next request is answered rather than reset. Before
    // that fix every keep-alive socket ended in a reset (32 of 32 in every run); now none are
    // expected, with room for a request racing the sweep on an idle socket.
    expect(result.statuses.get('error:ECONNRESET') ?? 0).toBeLessThanOrEqual(MAX_RACE_RESETS);
    expect(result.hangs).toBe(0);
    expect(result.rejected).toEqual([]);
    expect(result.acked).toBe(EVENTS);
    expect(result.lost).toEqual([]);
    expect(result.duplicated).toEqual([]);
    expect(result.unexpected).toEqual([]);
    expect(result.overlaps).toEqual([]);
  }, 120_000);
});

function countBy(attempts: { status: number | undefined; error: string | undefined }[]) {
  const counts: Record<string, number> = {};
  for (const a of attempts) {
    const key = a.status === undefined ? `error:${a.error}` : String(a.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
