import { Job } from 'bullmq';
import {
  type BatchEvent,
  type BatchWriter,
  type DeliveryHistory,
  deliveryRecord,
} from './batch-writer.js';
import type { RedisClient } from './connection.js';
import { HistoryWriter } from './history.js';
import { jobIdFor, queueShards, shardOf } from './naming.js';
import type { QueuePath } from './queue-path.js';
import {
  type EventJobData,
  type EventQueue,
  openQueue,
  type QueueHandleSettings,
} from './queues.js';

/** What happened to an event handed to {@link EventProducer.enqueue}. */
export type EnqueueOutcome =
  /** A new job is in Redis. */
  | 'enqueued'
  /** The event's job already exists (waiting, active, delayed, completed) or it was handled. */
  | 'duplicate'
  /** Its job had failed permanently: it is back in the queue with a fresh attempt budget. */
  | 'requeued';

/** Redis did not accept the job in time, or is unreachable. Nothing was acknowledged. */
export class QueueUnavailableError extends Error {
  override name = 'QueueUnavailableError';
}

/** Dependencies of {@link EventProducer}. */
export interface ProducerDeps {
  /** A `producer`-role client (offline queue off). */
  client: RedisClient;
  settings: QueueHandleSettings;
  /** The stock or the fast path (`chooseQueuePath`): how a batch is looked up and added. */
  path: QueuePath;
  /** Most events one round trip carries per shard. Default {@link DEFAULT_MAX_BATCH}. */
  maxBatch?: number;
  /**
   * Most batches per shard in flight at once where a batch is one atomic step (the fast path;
   * the stock path sends one at a time). Default {@link DEFAULT_MAX_IN_FLIGHT}.
   */
  maxInFlight?: number;
  /**
   * The event history is on (`ARCHIVE_DATABASE_URL`): every accepted delivery is recorded in
   * its shard's history stream. `onError` hears of a record Redis refused after the event itself
   * was queued (the answer stays a 200). Default: off.
   */
  history?: { onError(error: unknown): void };
}

/** Default of {@link ProducerDeps.maxBatch}. */
export const DEFAULT_MAX_BATCH = 256;
/** Default of {@link ProducerDeps.maxInFlight} (measured: docs/performance.md). */
export const DEFAULT_MAX_IN_FLIGHT = 6;

/** One waiting `enqueue` call. Settled exactly once: by its batch or by its own deadline. */
interface PendingEnqueue extends BatchEvent {
  readonly deadline: number;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve(outcome: EnqueueOutcome): void;
  reject(error: QueueUnavailableError): void;
}

/** The calls of one batch that carry the same event id: the first decides, the rest follow. */
interface EventGroup {
  readonly leader: PendingEnqueue;
  readonly followers: PendingEnqueue[];
}

/**
 * Puts verified events into their queue shard, at most once per event id. Safe to create while
 * Redis is down: it fails fast meanwhile and works as soon as Redis answers.
 *
 * Concurrent calls are coalesced per shard into batches, each looked up and added by the path's
 * {@link BatchWriter} (stock: lookups then `addBulk`; fast: one script call). Each call resolves
 * only once its own job is in Redis, with its own outcome and its own deadline.
 */
export class EventProducer {
  readonly #client: RedisClient;
  readonly #settings: QueueHandleSettings;
  readonly #shards;
  readonly #queues = new Map<number, Promise<EventQueue>>();
  readonly #batchers: ShardBatcher[];
  readonly #writer: BatchWriter;
  readonly #history: DeliveryHistory | undefined;
  #closed = false;

  constructor(deps: ProducerDeps) {
    this.#client = deps.client;
    this.#settings = deps.settings;
    this.#shards = queueShards(deps.settings);
    this.#history =
      deps.history === undefined
        ? undefined
        : {
            writer: new HistoryWriter({ client: deps.client, settings: deps.settings }),
            onError: (error) => deps.history?.onError(error),
          };
    this.#writer = deps.path.batchWriter(deps.client, deps.settings, {
      maxInFlight: Math.max(1, deps.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT),
      history: this.#history,
    });
    const maxBatch = Math.max(1, deps.maxBatch ?? DEFAULT_MAX_BATCH);
    this.#batchers = this.#shards.map(
      (shard) =>
        new ShardBatcher(maxBatch, this.#writer.maxInFlight, (batch) =>
          this.#flush(shard.index, batch),
        ),
    );
  }

  /**
   * Enqueues an event unless it is known already. Resolves only once Redis holds the job;
   * rejects with {@link QueueUnavailableError} when Redis is unreachable or `timeoutMs` passes.
   * `eventJson`, when given, is the JSON text `data.event` was parsed from: on the fast path the
   * job's data then carries that text instead of `data.event` serialised again.
   */
  enqueue(data: EventJobData, timeoutMs: number, eventJson?: string): Promise<EnqueueOutcome> {
    if (this.#closed) return Promise.reject(new QueueUnavailableError('producer is closed'));
    if (this.#client.status !== 'ready') {
      return Promise.reject(new QueueUnavailableError(`Redis is ${this.#client.status}`));
    }
    const id = data.event.id;
    const batcher = this.#batchers[shardOf(id, this.#shards.length)];
    if (batcher === undefined) return Promise.reject(new Error(`no queue shard for ${id}`));
    return new Promise<EnqueueOutcome>((resolve, reject) => {
      const pending: PendingEnqueue = {
        data,
        eventJson,
        jobId: jobIdFor(id),
        deadline: Date.now() + timeoutMs,
        settled: false,
        timer: undefined,
        resolve(outcome) {
          if (pending.settled) return;
          pending.settled = true;
          clearTimeout(pending.timer);
          resolve(outcome);
        },
        reject(error) {
          if (pending.settled) return;
          pending.settled = true;
          clearTimeout(pending.timer);
          reject(error);
        },
      };
      pending.timer = setTimeout(
        () => pending.reject(new QueueUnavailableError(`enqueue took longer than ${timeoutMs} ms`)),
        timeoutMs,
      );
      batcher.push(pending);
    });
  }

  /** Runs one batch of one shard. Never throws: every call of the batch is settled. */
  async #flush(shardIndex: number, batch: PendingEnqueue[]): Promise<void> {
    const groups = new Map<string, EventGroup>();
    for (const pending of batch) {
      const group = groups.get(pending.jobId);
      if (group === undefined) groups.set(pending.jobId, { leader: pending, followers: [] });
      else group.followers.push(pending);
    }
    const all = [...groups.values()];
    try {
      if (this.#client.status !== 'ready') {
        throw new QueueUnavailableError(`Redis is ${this.#client.status}`);
      }
      const queue = await this.#queue(shardIndex);
      const states = await this.#writer.write(
        queue,
        all.map((group) => group.leader),
      );
      const requeues: Promise<void>[] = [];
      all.forEach((group, index) => {
        const state = states[index];
        if (state === 'added') settleGroup(group, 'enqueued');
        else if (state === 'known') settleGroup(group, 'duplicate');
        else if (state === 'failed') {
          requeues.push(
            this.#requeue(queue, group.leader.data, group.leader.jobId).then(
              async (outcome) => {
                await this.#recordRequeue(group.leader, outcome);
                settleGroup(group, outcome);
              },
              (error: unknown) => settleGroup(group, unavailable(error)),
            ),
          );
        } else settleGroup(group, unavailable(state ?? new Error('no reply')));
      });
      await Promise.all(requeues);
    } catch (error) {
      for (const group of all) settleGroup(group, unavailable(error));
    }
  }

  /** A failed job's redelivery, in the history: requeued (or found queued meanwhile). */
  async #recordRequeue(event: BatchEvent, outcome: EnqueueOutcome): Promise<void> {
    const history = this.#history;
    if (history === undefined) return;
    const record = deliveryRecord(event, outcome === 'duplicate' ? 'duplicate' : 'requeued');
    await history.writer.append([record]).catch(history.onError);
  }

  /** Puts a permanently failed job back with a fresh attempt budget. Rare: one event at a time. */
  async #requeue(queue: EventQueue, data: EventJobData, jobId: string): Promise<EnqueueOutcome> {
    const job = await Job.fromId<EventJobData, void, string>(queue, jobId);
    if (job === undefined) {
      // Removed since it was looked up: add it afresh.
      await queue.add(data.event.type, data, { jobId });
      return 'enqueued';
    }
    try {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return 'requeued';
    } catch (error) {
      // Someone else moved it out of the failed set meanwhile: it is queued either way.
      if ((await job.getState()) !== 'failed') return 'duplicate';
      throw error;
    }
  }

  /**
   * The shard's queue, created once Redis is ready. BullMQ's init (INFO, script loading) fails
   * for good when Redis is down at that moment, so a failed init is dropped and retried.
   */
  #queue(index: number): Promise<EventQueue> {
    let pending = this.#queues.get(index);
    if (pending === undefined) {
      const shard = this.#shards[index];
      if (shard === undefined) throw new Error(`no queue shard ${index}`);
      const queue = openQueue(this.#client, shard, this.#settings);
      queue.on('error', () => {
        // Connection errors surface on the enqueue that hit them; nothing to do here.
      });
      pending = queue.waitUntilReady().then(() => queue);
      pending.catch(() => {
        this.#queues.delete(index);
        void queue.close().catch(() => {});
      });
      this.#queues.set(index, pending);
    }
    return pending;
  }

  /** Rejects calls still waiting for a batch, then closes the queue handles (not the client). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const batcher of this.#batchers) batcher.rejectWaiting();
    const queues = await Promise.allSettled(this.#queues.values());
    this.#queues.clear();
    await Promise.all(
      queues.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)),
    );
  }
}

function settleGroup(group: EventGroup, outcome: EnqueueOutcome | QueueUnavailableError): void {
  if (outcome instanceof QueueUnavailableError) {
    group.leader.reject(outcome);
    for (const follower of group.followers) follower.reject(outcome);
    return;
  }
  group.leader.resolve(outcome);
  // The same event twice in one batch is one job: the others learn it is known.
  for (const follower of group.followers) follower.resolve('duplicate');
}

function unavailable(error: unknown): QueueUnavailableError {
  if (error instanceof QueueUnavailableError) return error;
  return new QueueUnavailableError('enqueue failed', { cause: error });
}

/**
 * One shard's queue of waiting calls, with at most `maxInFlight` batches in flight. A batch
 * starts on the next turn of the event loop after the first call, so calls that arrive together
 * go together; calls that arrive while the limit is reached form the next one.
 */
class ShardBatcher {
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  readonly #run: (batch: PendingEnqueue[]) => Promise<void>;
  #waiting: PendingEnqueue[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(
    maxBatch: number,
    maxInFlight: number,
    run: (batch: PendingEnqueue[]) => Promise<void>,
  ) {
    this.#maxBatch = maxBatch;
    this.#maxInFlight = maxInFlight;
    this.#run = run;
  }

  push(pending: PendingEnqueue): void {
    this.#waiting.push(pending);
    if (!this.#scheduled && this.#inFlight < this.#maxInFlight) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#launch();
      });
    }
  }

  rejectWaiting(): void {
    for (const pending of this.#waiting.splice(0)) {
      pending.reject(new QueueUnavailableError('producer is closed'));
    }
  }

  #launch(): void {
    while (this.#inFlight < this.#maxInFlight && this.#waiting.length > 0) {
      const taken = this.#waiting.splice(0, this.#maxBatch);
      // Calls whose deadline passed while they waited are answered already: send nothing.
      const batch = taken.filter((pending) => !pending.settled);
      if (batch.length === 0) continue;
      this.#inFlight++;
      void this.#boundedRun(batch).then(() => {
        this.#inFlight--;
        this.#launch();
      });
    }
  }

  /**
   * Runs a batch, but waits for it no longer than its last deadline: by then every call in it is
   * answered, and a Redis call that never returns must not stall the shard for good.
   */
  async #boundedRun(batch: PendingEnqueue[]): Promise<void> {
    let last = 0;
    for (const pending of batch) last = Math.max(last, pending.deadline);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#run(batch),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, last - Date.now()));
      }),
    ]);
    clearTimeout(timer);
  }
}
