import type { Envelope } from '@groq-webhooks/core';
import type { JobState } from 'bullmq';
import type { RedisClient } from './connection.js';
import { eventIdFromJobId, jobIdFor, type QueueShard, queueShards, shardOf } from './naming.js';
import { turnWaitsKey } from './ordering.js';
import {
  type EventJobData,
  type EventQueue,
  openQueue,
  type QueueHandleSettings,
} from './queues.js';
import { MAX_RENDER_DEPTH, nestedDeeperThan, tooDeepProblem } from './render-depth.js';

/** One failed event, as listed. */
export interface FailedEventSummary {
  /** The event id (from the signed envelope). */
  eventId: string;
  /** The BullMQ job id derived from it. */
  jobId: string;
  /** Queue shard holding the job. */
  shard: number;
  /** Event type (the job name). */
  type: string;
  /** Attempts made so far. */
  attempts: number;
  /** The last attempt's error message. */
  lastError: string;
  /** ISO-8601 time the job failed for good, when known. */
  failedAt: string | undefined;
}

/** Why one attempt failed. */
export interface AttemptFailure {
  /** 1-based attempt number, counted over the stacks BullMQ kept. */
  attempt: number;
  /** The error line (first line of the stack). */
  error: string;
  /** The full stack as recorded by the worker. */
  stack: string;
}

/** Everything known about one event's job. */
export interface EventDetail extends FailedEventSummary {
  /** Current job state ('failed' unless it moved on). */
  state: JobState | 'unknown';
  /**
   * The envelope as received, or null when it cannot be shown: nested deeper than
   * `MAX_RENDER_DEPTH` (stored before the ingest refused such bodies); `payloadProblem` says why.
   */
  payload: Envelope | null;
  /** Why `payload` is null. */
  payloadProblem?: string;
  /** ISO-8601 time the ingest accepted it. */
  receivedAt: string;
  /** Attempts started (includes one that may be running). */
  attemptsStarted: number;
  /** The attempt budget. */
  maxAttempts: number;
  /** ISO-8601 time the job was created. */
  createdAt: string;
  /** ISO-8601 time the last attempt started, when any did. */
  processedAt: string | undefined;
  /** One entry per failed attempt BullMQ kept, oldest first. */
  failures: AttemptFailure[];
}

/** Result of {@link FailedEvents.list}. */
export interface FailedList {
  /** Failed jobs over all shards. */
  total: number;
  /** The most recently failed ones, newest first. */
  events: FailedEventSummary[];
}

/** What a single-event operation did. */
export type FailedOperationOutcome =
  /** Done. */
  | 'ok'
  /** No job for that event id. */
  | 'not_found'
  /** The job exists but is not in the failed state (so it was left alone). */
  | 'not_failed';

/** Result of {@link FailedEvents.retryAll} / {@link FailedEvents.removeAll}. */
export interface BulkResult {
  /** Failed jobs found when the operation started. */
  total: number;
  /** Retried (or removed). */
  done: number;
  /** Left alone: moved on meanwhile, or locked. */
  skipped: number;
}

/** Progress callback of the bulk operations. */
export type BulkProgress = (processed: number, total: number) => void;

/** Job states counted by {@link FailedEvents.stats}. */
export const COUNTED_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'completed',
  'failed',
] as const;

/** A job state counted by {@link FailedEvents.stats}. */
export type CountedState = (typeof COUNTED_STATES)[number];

/** Counts per job state. */
export type StateCounts = Record<CountedState, number>;

/** Result of {@link FailedEvents.stats}. */
export interface QueueStats {
  /** Counts summed over all shards. */
  counts: StateCounts;
  /** Age in seconds of the oldest waiting job over all shards, or null when none waits. */
  oldestWaitingSeconds: number | null;
  /**
   * Jobs put back for a moment because another event of their resource was running
   * (per-resource ordering), still due: part of `delayed`.
   */
  waitingOnResource: number;
  /** Shard queues paused (in Bull Board, say): their waiting jobs are not taken. */
  pausedShards: number[];
  /** Per shard: its queue name, counts, and whether it is paused. */
  shards: { index: number; name: string; counts: StateCounts; paused: boolean }[];
}

/** Dependencies of {@link FailedEvents}. */
export interface FailedEventsDeps {
  /** An `admin`-role client (shared; not closed by {@link FailedEvents.close}). */
  client: RedisClient;
  settings: QueueHandleSettings;
  /** Clock, injectable for tests. Default `Date.now`. */
  now?: () => number;
}

/** Jobs handled at once by the bulk operations: enough to pipeline, few enough to stay polite. */
const BULK_CONCURRENCY = 16;

/**
 * The operator's view of the queue (SPEC §7): list, show, retry and remove failed events over
 * every shard, and count jobs per state. Used by the CLI and the dashboard.
 */
export class FailedEvents {
  readonly #client: RedisClient;
  readonly #shards: QueueShard[];
  readonly #queues: EventQueue[];
  readonly #now: () => number;

  constructor(deps: FailedEventsDeps) {
    this.#client = deps.client;
    this.#shards = queueShards(deps.settings);
    this.#queues = this.#shards.map((shard) => {
      const queue = openQueue(deps.client, shard, deps.settings);
      // Connection errors reject the command that hit them; nothing more to do here.
      queue.on('error', () => {});
      return queue;
    });
    this.#now = deps.now ?? Date.now;
  }

  /** The BullMQ queues, one per shard (for Bull Board). */
  get queues(): readonly EventQueue[] {
    return this.#queues;
  }

  /** The most recently failed events over all shards, newest first, at most `limit`. */
  async list(options: { limit: number }): Promise<FailedList> {
    const limit = Math.max(0, Math.floor(options.limit));
    const perShard = await Promise.all(
      this.#queues.map(async (queue, index) => {
        const [count, jobs] = await Promise.all([
          queue.getFailedCount(),
          limit === 0 ? Promise.resolve([]) : queue.getFailed(0, limit - 1),
        ]);
        return { count, jobs: jobs.map((job) => summarize(job, index)) };
      }),
    );
    const events = perShard
      .flatMap((shard) => shard.jobs)
      .sort((a, b) => (b.failedAt ?? '').localeCompare(a.failedAt ?? ''))
      .slice(0, limit);
    return { total: perShard.reduce((sum, shard) => sum + shard.count, 0), events };
  }

  /** One event's job with its payload and every kept attempt's error, or undefined. */
  async show(eventId: string): Promise<EventDetail | undefined> {
    const { queue, index } = this.#queueOf(eventId);
    const job = await queue.getJob(jobIdFor(eventId));
    if (job === undefined) return undefined;
    const state = await job.getState();
    const stacks = job.stacktrace ?? [];
    const unrenderable = nestedDeeperThan(job.data.event, MAX_RENDER_DEPTH);
    return {
      ...summarize(job, index),
      state,
      payload: unrenderable ? null : job.data.event,
      ...(unrenderable ? { payloadProblem: `payload ${tooDeepProblem()}` } : {}),
      receivedAt: job.data.receivedAt,
      attemptsStarted: job.attemptsStarted,
      maxAttempts: job.opts.attempts ?? 1,
      createdAt: new Date(job.timestamp).toISOString(),
      processedAt: isoOrUndefined(job.processedOn),
      failures: stacks.map((stack, i) => ({
        attempt: i + 1,
        error: stack.split('\n', 1)[0] ?? '',
        stack,
      })),
    };
  }

  /** Puts a failed event back in its queue with a fresh attempt budget. */
  async retry(eventId: string): Promise<FailedOperationOutcome> {
    const { queue } = this.#queueOf(eventId);
    return this.#retryJob(queue, jobIdFor(eventId));
  }

  /** Deletes a failed event's job. Jobs in any other state are left alone. */
  async remove(eventId: string): Promise<FailedOperationOutcome> {
    const { queue } = this.#queueOf(eventId);
    return this.#removeJob(queue, jobIdFor(eventId));
  }

  /** Retries every event failed when the call starts, reporting progress. */
  retryAll(onProgress?: BulkProgress): Promise<BulkResult> {
    return this.#bulk((queue, jobId) => this.#retryJob(queue, jobId), onProgress);
  }

  /**
   * Deletes every event failed when the call starts, one job at a time, so jobs that moved on
   * meanwhile (retried, redelivered) are never touched.
   */
  removeAll(onProgress?: BulkProgress): Promise<BulkResult> {
    return this.#bulk((queue, jobId) => this.#removeJob(queue, jobId), onProgress);
  }

  /** Counts per state summed over all shards, and the oldest waiting job's age. */
  async stats(): Promise<QueueStats> {
    const now = this.#now();
    const perShard = await Promise.all(
      this.#queues.map(async (queue, index) => {
        const [raw, oldest, paused, waitingOnResource] = await Promise.all([
          queue.getJobCounts(...COUNTED_STATES),
          queue.getJobs(['waiting'], 0, 0, true),
          queue.isPaused(),
          this.#client.zcount(turnWaitsKey(queue.qualifiedName), now, '+inf'),
        ]);
        const counts = emptyCounts();
        for (const state of COUNTED_STATES) counts[state] = raw[state] ?? 0;
        const first = oldest[0];
        return {
          index,
          name: this.#shards[index]?.name ?? queue.name,
          counts,
          paused,
          waitingOnResource,
          oldestTimestamp: first === undefined ? undefined : first.timestamp,
        };
      }),
    );
    const counts = emptyCounts();
    for (const shard of perShard) {
      for (const state of COUNTED_STATES) counts[state] += shard.counts[state];
    }
    const timestamps = perShard
      .map((shard) => shard.oldestTimestamp)
      .filter((value): value is number => value !== undefined);
    const oldestWaitingSeconds =
      timestamps.length === 0
        ? null
        : Math.max(0, Math.floor((now - Math.min(...timestamps)) / 1000));
    return {
      counts,
      oldestWaitingSeconds,
      waitingOnResource: perShard.reduce((sum, shard) => sum + shard.waitingOnResource, 0),
      pausedShards: perShard.filter((shard) => shard.paused).map((shard) => shard.index),
      shards: perShard.map(({ index, name, counts: c, paused }) => ({
        index,
        name,
        counts: c,
        paused,
      })),
    };
  }

  /** Closes the queue handles (not the shared client). */
  async close(): Promise<void> {
    await Promise.all(this.#queues.map((queue) => queue.close()));
  }

  #queueOf(eventId: string): { queue: EventQueue; index: number } {
    const index = shardOf(eventId, this.#queues.length);
    const queue = this.#queues[index];
    if (queue === undefined) throw new Error(`no queue shard ${index}`);
    return { queue, index };
  }

  async #retryJob(queue: EventQueue, jobId: string): Promise<FailedOperationOutcome> {
    const job = await queue.getJob(jobId);
    if (job === undefined) return 'not_found';
    if ((await job.getState()) !== 'failed') return 'not_failed';
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return 'ok';
    } catch (error) {
      // Retried or redelivered by someone else between the check and the move.
      const state = await queue.getJobState(jobId);
      if (state === 'unknown') return 'not_found';
      if (state !== 'failed') return 'not_failed';
      throw new Error(`could not retry job ${jobId}`, { cause: error });
    }
  }

  async #removeJob(queue: EventQueue, jobId: string): Promise<FailedOperationOutcome> {
    const state = await queue.getJobState(jobId);
    if (state === 'unknown') return 'not_found';
    if (state !== 'failed') return 'not_failed';
    const removed = await queue.remove(jobId);
    if (removed === 1) return 'ok';
    const after = await queue.getJobState(jobId);
    if (after === 'unknown') return 'not_found';
    if (after !== 'failed') return 'not_failed';
    throw new Error(`could not remove job ${jobId}: it is locked`);
  }

  async #bulk(
    operation: (queue: EventQueue, jobId: string) => Promise<FailedOperationOutcome>,
    onProgress: BulkProgress | undefined,
  ): Promise<BulkResult> {
    // Snapshot the ids first: the failed sets shrink (and may grow) while we work on them.
    const snapshot = await Promise.all(
      this.#queues.map(async (queue) =>
        (await queue.getRanges(['failed'], 0, -1)).map((jobId) => ({ queue, jobId })),
      ),
    );
    const work = snapshot.flat();
    const total = work.length;
    let processed = 0;
    let done = 0;
    onProgress?.(0, total);
    let next = 0;
    const runner = async (): Promise<void> => {
      for (;;) {
        const item = work[next];
        next += 1;
        if (item === undefined) return;
        const outcome = await operation(item.queue, item.jobId);
        if (outcome === 'ok') done += 1;
        processed += 1;
        onProgress?.(processed, total);
      }
    };
    await Promise.all(Array.from({ length: Math.min(BULK_CONCURRENCY, total) }, runner));
    return { total, done, skipped: total - done };
  }
}

interface JobView {
  id?: string | undefined;
  name: string;
  data: EventJobData;
  attemptsMade: number;
  failedReason: string;
  finishedOn?: number | undefined;
}

function summarize(job: JobView, shard: number): FailedEventSummary {
  const jobId = job.id ?? '';
  return {
    eventId: eventIdFromJobId(jobId) ?? job.data?.event?.id ?? jobId,
    jobId,
    shard,
    type: job.name,
    attempts: job.attemptsMade,
    lastError: job.failedReason ?? '',
    failedAt: isoOrUndefined(job.finishedOn),
  };
}

function isoOrUndefined(millis: number | undefined): string | undefined {
  return millis === undefined || !Number.isFinite(millis)
    ? undefined
    : new Date(millis).toISOString();
}

function emptyCounts(): StateCounts {
  return {
    waiting: 0,
    active: 0,
    delayed: 0,
    prioritized: 0,
    'waiting-children': 0,
    completed: 0,
    failed: 0,
  };
}
