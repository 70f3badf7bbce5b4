import type { RedisClient } from './connection.js';
import type { DeliveryOutcome, DeliveryRecord, HistoryWriter } from './history.js';
import { DONE } from './idempotency.js';
import { idempotencyKey } from './naming.js';
import type { EventJobData, EventQueue } from './queues.js';

/** One event of a producer batch: the job it becomes. */
export interface BatchEvent {
  readonly jobId: string;
  readonly data: EventJobData;
  /** The JSON text `data.event` was parsed from, when the caller has it. */
  readonly eventJson: string | undefined;
}

/**
 * What Redis knows of a batch's event once the batch is written: its job was added now, the
 * event is known (a live job or a done-marker), or its job failed for good.
 */
export type BatchState = 'added' | 'known' | 'failed';

/** Looks up and adds one queue shard's batch of events: the producer's one Redis step. */
export interface BatchWriter {
  /** Most batches of one shard in flight at once: 1 unless a batch is one atomic step. */
  readonly maxInFlight: number;
  /** One state (or the error that kept it from Redis) per event, in order. */
  write(queue: EventQueue, events: readonly BatchEvent[]): Promise<(BatchState | Error)[]>;
}

/** Where a producer's delivery records go when the event history is on. */
export interface DeliveryHistory {
  readonly writer: HistoryWriter;
  /** A record Redis did not take: the event is queued all the same (and the answer a 200). */
  onError(error: unknown): void;
}

/** The delivery record of a batch's event that Redis now holds (or knew). */
export function deliveryRecord(event: BatchEvent, outcome: DeliveryOutcome): DeliveryRecord {
  const { data } = event;
  const record: DeliveryRecord = {
    kind: 'delivery',
    eventId: data.event.id,
    type: data.event.type,
    created: data.event.created,
    receivedAt: Date.parse(data.receivedAt),
    keyIndex: data.keyIndex,
    outcome,
  };
  if (outcome !== 'duplicate') record.payload = event.eventJson ?? JSON.stringify(data.event);
  return record;
}

/** One reply of a pipeline: `[error, value]`. */
type Reply = [error: Error | null, value: unknown];

/**
 * The stock path's batch: one round trip of lookups — each event's done-marker, whether its job
 * exists, whether that job failed for good — then BullMQ's `addBulk` for the new ones. The
 * done-markers live in other Cluster slots than the queue keys, so they go out as separate
 * commands (ioredis routes each one) and only the queue keys, which share the shard's hash tag,
 * share a pipeline. Not atomic: one batch per shard at a time, so two batches never both take
 * the same event for new.
 */
export class StockBatchWriter implements BatchWriter {
  readonly maxInFlight = 1;
  readonly #client: RedisClient;
  readonly #history: DeliveryHistory | undefined;

  /** `client`: the producer's connection (the one its queues use). */
  constructor(client: RedisClient, history: DeliveryHistory | undefined) {
    this.#client = client;
    this.#history = history;
  }

  async write(queue: EventQueue, events: readonly BatchEvent[]): Promise<(BatchState | Error)[]> {
    const client = this.#client;
    const failedKey = queue.keys.failed ?? queue.toKey('failed');
    const queued = client.pipeline();
    for (const { jobId } of events) {
      queued.exists(queue.toKey(jobId));
      queued.zscore(failedKey, jobId);
    }
    const [markers, replies] = await Promise.all([
      Promise.all(
        events.map(({ data }) =>
          client.get(idempotencyKey(data.event.id)).then(
            (value): Reply => [null, value],
            (error: Error): Reply => [error, null],
          ),
        ),
      ),
      queued.exec(),
    ]);
    const states = events.map((_, index) =>
      lookedUp(markers[index], replies?.[index * 2], replies?.[index * 2 + 1]),
    );
    const fresh = events.filter((_, index) => states[index] === 'new');
    let final = states as (BatchState | Error)[];
    if (fresh.length > 0) {
      // With an existing jobId BullMQ adds nothing, so a race with another ingest stays one job.
      const outcome = await queue
        .addBulk(fresh.map(({ data, jobId }) => ({ name: data.event.type, data, opts: { jobId } })))
        .then(
          (): BatchState => 'added',
          (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
        );
      final = states.map((state) => (state === 'new' ? outcome : state));
    }
    await this.#record(events, final);
    return final;
  }

  /** The deliveries Redis now holds or knew, in the history (a failed job's: the producer's). */
  async #record(events: readonly BatchEvent[], states: readonly (BatchState | Error)[]) {
    const history = this.#history;
    if (history === undefined) return;
    const records = events.flatMap((event, index) => {
      const state = states[index];
      if (state === 'added') return [deliveryRecord(event, 'received')];
      if (state === 'known') return [deliveryRecord(event, 'duplicate')];
      return [];
    });
    if (records.length > 0) await history.writer.append(records).catch(history.onError);
  }
}

function lookedUp(
  marker: Reply | undefined,
  exists: Reply | undefined,
  failedScore: Reply | undefined,
): BatchState | 'new' | Error {
  if (marker === undefined || exists === undefined || failedScore === undefined) {
    return new Error('missing reply');
  }
  const error = marker[0] ?? exists[0] ?? failedScore[0];
  if (error !== null) return error;
  if (marker[1] === DONE) return 'known';
  if (exists[1] !== 1) return 'new';
  return failedScore[1] === null ? 'known' : 'failed';
}
