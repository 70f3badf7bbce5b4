import {
  BACKOFF_TYPE,
  backoffDelay,
  type QueueShard,
  type RedisClient,
  type WorkerOptions,
} from '@groq-webhooks/queue';
import type { Logger } from '@groq-webhooks/telemetry';
import type { WorkerSettings } from './worker.js';

/**
 * Times a job may be recovered after its worker died (SIGKILL, OOM, lost network) before BullMQ
 * fails it. BullMQ's default of 1 fails an event after two crashes in a row, which a rolling
 * deploy or a crash-looping node can cause; a crash never makes the handler's effect happen
 * twice (the idempotency claim and done-marker see to that), so being generous costs nothing.
 * A job that really kills every worker it lands on still ends failed, after 10 crashes.
 */
export const MAX_STALLED_COUNT = 10;

/** The options of one shard's BullMQ `Worker`: locks, stall checks and the project's backoff. */
export function bullmqWorkerOptions(
  settings: WorkerSettings,
  shard: QueueShard,
  connection: RedisClient,
  name: string,
  logger: Logger,
): WorkerOptions {
  return {
    connection,
    prefix: shard.prefix,
    autorun: false,
    name,
    concurrency: settings.concurrency,
    lockDuration: settings.lockDurationMs,
    stalledInterval: bullStalledInterval(settings.stalledIntervalMs),
    maxStalledCount: MAX_STALLED_COUNT,
    settings: {
      backoffStrategy: (attemptsMade, type, _error, job) => {
        const backoff = job?.opts.backoff;
        const base =
          typeof backoff === 'number' ? backoff : (backoff?.delay ?? settings.backoffBaseMs);
        if (type !== BACKOFF_TYPE) {
          logger.warn({ jobId: job?.id, backoff: type }, 'Unknown backoff type; using ours');
        }
        return backoffDelay(attemptsMade, base);
      },
    },
  };
}

/**
 * BullMQ's `stalledInterval` for a wanted maximum gap between stall checks. BullMQ guards the
 * check with a key that lives exactly `stalledInterval` and re-arms its timer for the same time,
 * so a check often finds its own previous guard still alive (by a millisecond) and is skipped:
 * the real gap is up to twice the option. Passing half keeps every gap within `maxGapMs`, so a
 * dead worker's job is back in the queue at most LOCK_DURATION_MS + STALLED_INTERVAL_MS (30 s by
 * default) after its last lock renewal.
 */
export function bullStalledInterval(maxGapMs: number): number {
  return Math.max(500, Math.floor(maxGapMs / 2));
}
