import { type SignedSender, traffic, waitFor } from '@groq-webhooks/testing';
import type { Redis } from 'ioredis';
import { queueDrained } from './stack.js';

/**
 * Longest plausible time between a handler writing its effect and its worker marking the event
 * done, on a loaded 2-core machine (normally a few ms: one Redis round trip).
 */
export const CRASH_WINDOW_MS = 1000;

/** What a scenario's reconciliation found. */
export interface Reconciliation {
  /** Deliveries (sender.send calls) and how many got a 2xx. */
  sent: number;
  acked: number;
  /** Distinct events, and how many of them got a 2xx at least once. */
  events: number;
  ackedEvents: number;
  non2xx: number;
  /** Completed handler runs, summed over all events. */
  effects: number;
  /** Acknowledged events without any completed effect. */
  lost: string[];
  /** Events with more than one completed effect. */
  duplicated: string[];
  /**
   * Of those, the ones whose earlier runs all finished on a worker SIGKILLed right after (within
   * {@link CRASH_WINDOW_MS}): the crash between "handler finished" and "marked done" of SPEC §6,
   * which only a handler's own idempotent write can cover. Any other duplicate is a product bug.
   */
  duplicatedByKill: string[];
  /** Effects of events that were never sent. */
  unexpected: string[];
  /** Events whose handler started while another live process was running it (SPEC §6). */
  overlaps: string[];
  /** Events of deliveries the sender gave up on. */
  rejected: string[];
  statuses: Map<string, number>;
  hangs: number;
  line: string;
}

/** Inputs of {@link reconcile}. */
export interface ReconcileInput {
  scenario: string;
  senders: readonly SignedSender[];
  /** Client of the effects Redis (written by the handler module). */
  effects: Redis;
  /** Client of the queue's Redis: reconciliation waits until no job can still run. */
  queue: Redis;
  maxRecoverySeconds: number;
  /** Workers the scenario SIGKILLed: pid → epoch ms the kill was observed. */
  kills?: ReadonlyMap<number, number>;
  /** How long the workers get to finish the backlog. Default 60 s. */
  drainTimeoutMs?: number;
}

/**
 * Waits until every acknowledged event has an effect and the queue is drained, then compares
 * effects with what was sent and prints the scenario's one summary line.
 */
export async function reconcile(input: ReconcileInput): Promise<Reconciliation> {
  const sent = new Set<string>();
  const acked = new Set<string>();
  let deliveries = 0;
  let ackedDeliveries = 0;
  let non2xx = 0;
  let hangs = 0;
  const rejected: string[] = [];
  const statuses = new Map<string, number>();
  for (const sender of input.senders) {
    const counts = traffic(sender);
    non2xx += counts.non2xx;
    hangs += counts.hangs;
    rejected.push(...counts.rejected);
    for (const [status, count] of counts.statuses) {
      statuses.set(status, (statuses.get(status) ?? 0) + count);
    }
    deliveries += counts.sent;
    ackedDeliveries += counts.acked;
    for (const delivery of sender.deliveries) {
      sent.add(delivery.id);
      if (delivery.acked) acked.add(delivery.id);
    }
  }
  const counts = async () => {
    const raw = await input.effects.hgetall('effects');
    return new Map(Object.entries(raw).map(([id, count]) => [id, Number(count)]));
  };
  // Not a failure yet when this times out: what is missing then is reported as lost.
  await waitFor(
    async () => {
      const effects = await counts();
      for (const id of acked) if (!effects.has(id)) return false;
      return queueDrained(input.queue);
    },
    { timeoutMs: input.drainTimeoutMs ?? 60_000, intervalMs: 100, description: 'drain' },
  ).catch(() => undefined);

  const effects = await counts();
  let total = 0;
  for (const count of effects.values()) total += count;
  const lost = [...acked].filter((id) => !effects.has(id));
  const duplicated = [...effects].filter(([, count]) => count > 1).map(([id]) => id);
  const unexpected = [...effects.keys()].filter((id) => !sent.has(id));
  const overlaps = Object.keys(await input.effects.hgetall('overlaps'));
  const duplicatedByKill: string[] = [];
  for (const id of duplicated) {
    const runs = await input.effects.lrange(`runs:${id}`, 0, -1);
    // Each run is `<pid>@<attempt>@<epoch ms before the effect was written>`.
    const earlier = runs.slice(0, -1).map((run) => run.split('@').map(Number));
    const killedRightAfter = ([pid, , at]: number[]) => {
      const killedAt = pid === undefined ? undefined : input.kills?.get(pid);
      return killedAt !== undefined && at !== undefined && killedAt - at <= CRASH_WINDOW_MS;
    };
    if (earlier.length > 0 && earlier.every(killedRightAfter)) duplicatedByKill.push(id);
  }
  const line = [
    `scenario=${input.scenario}`,
    `sent=${deliveries}`,
    `2xx=${ackedDeliveries}`,
    `non2xx=${non2xx}`,
    `effects=${total}`,
    `lost=${lost.length}`,
    `duplicated=${duplicated.length}`,
    `max_recovery_s=${input.maxRecoverySeconds.toFixed(2)}`,
    ...(input.kills === undefined ? [] : [`duplicated_by_kill_window=${duplicatedByKill.length}`]),
  ].join(' ');
  // The one line per scenario the suite promises (vitest prints console output per test).
  console.log(line);
  return {
    sent: deliveries,
    acked: ackedDeliveries,
    events: sent.size,
    ackedEvents: acked.size,
    non2xx,
    effects: total,
    lost,
    duplicated,
    duplicatedByKill,
    unexpected,
    overlaps,
    rejected,
    statuses,
    hangs,
    line,
  };
}

/** Seconds from `since` (epoch ms) to the first 2xx answer any sender got after it. */
export function recoverySeconds(senders: readonly SignedSender[], since: number): number {
  let first = Number.POSITIVE_INFINITY;
  for (const sender of senders) {
    for (const attempt of sender.attempts()) {
      const ok = attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300;
      if (ok && attempt.at >= since && attempt.at < first) first = attempt.at;
    }
  }
  return Number.isFinite(first) ? (first - since) / 1000 : Number.NaN;
}
