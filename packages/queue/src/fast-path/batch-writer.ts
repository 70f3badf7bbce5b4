import type { BatchEvent, BatchState, BatchWriter } from '../batch-writer.js';
import type { RedisClient } from '../connection.js';
import { HISTORY_STREAM_SUFFIX } from '../history.js';
import { idempotencyKey } from '../naming.js';
import { type EventQueue, jobDataJson } from '../queues.js';
import { ENQUEUE_EVENTS } from './enqueue-script.js';

/** {@link ENQUEUE_EVENTS}' replies, by number. */
const STATES: readonly BatchState[] = ['added', 'known', 'failed'];

type EnqueueClient = RedisClient & {
  groqEnqueueEvents(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
};

/**
 * The fast path's batch: one script call that looks every event up and adds the new ones as
 * BullMQ's add script would ({@link ENQUEUE_EVENTS}). Each call is atomic, so a few batches of a
 * shard may be in flight at once.
 */
export class FastBatchWriter implements BatchWriter {
  readonly maxInFlight: number;
  readonly #client: EnqueueClient;
  /** The JSON of the options every job gets, as BullMQ stores them. */
  readonly #storedOptions: string;
  /** The event history is on: the script writes each delivery's record too. */
  readonly #history: boolean;

  constructor(
    client: RedisClient,
    options: { maxInFlight: number; storedOptions: string; history: boolean },
  ) {
    // defineCommand only registers the script locally; it is sent with EVALSHA on first use.
    client.defineCommand('groqEnqueueEvents', { lua: ENQUEUE_EVENTS });
    this.#client = client as EnqueueClient;
    this.maxInFlight = options.maxInFlight;
    this.#storedOptions = options.storedOptions;
    this.#history = options.history;
  }

  async write(queue: EventQueue, events: readonly BatchEvent[]): Promise<(BatchState | Error)[]> {
    const keys = queue.keys;
    const args: (string | number)[] = [
      keys.wait,
      keys.paused,
      keys.meta,
      keys.id,
      keys.completed,
      keys.delayed,
      keys.active,
      keys.events,
      keys.marker,
      keys.failed,
    ] as string[];
    for (const { data } of events) args.push(idempotencyKey(data.event.id));
    if (this.#history) args.push(queue.toKey(HISTORY_STREAM_SUFFIX));
    args.push(keys[''] as string, Date.now(), this.#storedOptions, this.#history ? 8 : 3);
    for (const { jobId, data, eventJson } of events) {
      const payload = eventJson ?? JSON.stringify(data.event);
      args.push(jobId, data.event.type, jobDataJson(data, payload));
      if (this.#history) {
        const { event } = data;
        args.push(event.id, event.created, Date.parse(data.receivedAt), data.keyIndex, payload);
      }
    }
    const keyCount = 10 + events.length + (this.#history ? 1 : 0);
    const states = await this.#client.groqEnqueueEvents(keyCount, ...args);
    return events.map((_, index) => {
      const state = states[index];
      if (state === undefined) return new Error('no reply');
      return STATES[state] ?? new Error(`BullMQ refused the job (code ${state})`);
    });
  }
}
