import type { CommonConfig, JobConfig } from '@groq-webhooks/config';
import type { DefaultJobOptions } from 'bullmq';

/** Name of the project's backoff strategy, implemented by {@link backoffDelay}. */
export const BACKOFF_TYPE = 'groq-exponential';
/** Longest wait between two attempts. */
export const MAX_BACKOFF_MS = 10 * 60 * 1000;
/**
 * Completed jobs are kept this long, seconds, and at most this many (for inspection; duplicates
 * are answered by the idempotency record), then trimmed. Defaults of `COMPLETED_RETENTION_SECONDS`
 * and `COMPLETED_RETENTION_COUNT`.
 */
export const COMPLETED_RETENTION = { age: 3600, count: 10_000 } as const;
/** Failed jobs are kept this long for inspection. */
export const FAILED_RETENTION_SECONDS = 14 * 24 * 3600;

/**
 * Default options of every event job. With the event history on (`archiveDatabaseUrl`) and no
 * count set, completed jobs are not kept: the history holds their payload and outcome, and the
 * idempotency record answers duplicates, so keeping them would only cost Redis memory.
 */
export function jobOptions(
  config: JobConfig & Partial<Pick<CommonConfig, 'archiveDatabaseUrl'>>,
): DefaultJobOptions {
  const historyOn = config.archiveDatabaseUrl !== undefined;
  return {
    attempts: config.jobAttempts,
    backoff: { type: BACKOFF_TYPE, delay: config.backoffBaseMs },
    removeOnComplete: {
      age: config.completedRetentionSeconds ?? COMPLETED_RETENTION.age,
      count: config.completedRetentionCount ?? (historyOn ? 0 : COMPLETED_RETENTION.count),
    },
    removeOnFail: { age: FAILED_RETENTION_SECONDS },
    // One stack per attempt, so an operator sees why every attempt failed.
    stackTraceLimit: Math.max(config.jobAttempts, 10),
  };
}

/**
 * Delay before the next attempt: exponential from `baseMs`, "equal jitter" (half fixed, half
 * random), capped at {@link MAX_BACKOFF_MS}. `random` is injectable for tests.
 */
export function backoffDelay(attemptsMade: number, baseMs: number, random = Math.random): number {
  const exponent = Math.min(Math.max(attemptsMade - 1, 0), 30);
  const ceiling = Math.min(baseMs * 2 ** exponent, MAX_BACKOFF_MS);
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}
