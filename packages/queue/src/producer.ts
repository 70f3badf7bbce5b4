import type { Envelope } from '@groq-webhooks/core';
import { Job } from 'bullmq';
import type { RedisClient } from './connection.js';
import { IdempotencyStore } from './idempotency.js';
import { jobIdFor, queueShards, shardOf } from './naming.js';
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
}

/**
 * Puts verified events into their queue shard, at most once per event id. Safe to create while
 * Redis is down: it fails fast meanwhile and works as soon as Redis answers.
 */
export class EventProducer {
  readonly #client: RedisClient;
  readonly #settings: QueueHandleSettings;
  readonly #shards;
  readonly #queues = new Map<number, Promise<EventQueue>>();
  readonly #idempotency: IdempotencyStore;

  constructor(deps: ProducerDeps) {
    this.#client = deps.client;
    this.#settings = deps.settings;
    this.#shards = queueShards(deps.settings);
    this.#idempotency = new IdempotencyStore(deps.client);
  }

  /**
   * Enqueues an event unless it is known already. Resolves only once Redis holds the job;
   * rejects with {@link QueueUnavailableError} when Redis is unreachable or `timeoutMs` passes.
   */
  async enqueue(data: EventJobData, timeoutMs: number): Promise<EnqueueOutcome> {
    if (this.#client.status !== 'ready') {
      throw new QueueUnavailableError(`Redis is ${this.#client.status}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new QueueUnavailableError(`enqueue took longer than ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.#enqueue(data), deadline]);
    } catch (error) {
      if (error instanceof QueueUnavailableError) throw error;
      throw new QueueUnavailableError('enqueue failed', { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  async #enqueue(data: EventJobData): Promise<EnqueueOutcome> {
    const event: Envelope = data.event;
    const queue = await this.#queue(shardOf(event.id, this.#shards.length));
    const jobId = jobIdFor(event.id);
    const [done, exists, failedScore] = await Promise.all([
      this.#idempotency.isDone(event.id),
      this.#client.exists(queue.toKey(jobId)),
      this.#client.zscore(queue.keys.failed ?? queue.toKey('failed'), jobId),
    ]);
    if (done) return 'duplicate';
    if (exists === 1) {
      if (failedScore === null) return 'duplicate';
      const job = await Job.fromId<EventJobData, void, string>(queue, jobId);
      if (job === undefined) return this.#add(queue, data, jobId);
      try {
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        return 'requeued';
      } catch (error) {
        // Someone else moved it out of the failed set meanwhile: it is queued either way.
        if ((await job.getState()) !== 'failed') return 'duplicate';
        throw error;
      }
    }
    return this.#add(queue, data, jobId);
  }

  async #add(queue: EventQueue, data: EventJobData, jobId: string): Promise<EnqueueOutcome> {
    // With an existing jobId BullMQ adds nothing, so a race with another ingest stays one job.
    await queue.add(data.event.type, data, { jobId });
    return 'enqueued';
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

  /** Closes the queue handles (not the shared client). */
  async close(): Promise<void> {
    const queues = await Promise.allSettled(this.#queues.values());
    this.#queues.clear();
    await Promise.all(
      queues.map((result) => (result.status === 'fulfilled' ? result.value.close() : undefined)),
    );
  }
}
