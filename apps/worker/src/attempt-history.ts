import type { AttemptRecord, HistoryWriter } from '@groq-webhooks/queue';
import type { AttemptHistory } from './steps/attempt.js';

/** The worker's attempt records, gathered per turn of the event loop and appended together. */
export interface AttemptHistoryWriter extends AttemptHistory {
  /** Appends what is still gathered (at close). */
  flush(): Promise<void>;
}

/**
 * Attempt records for the event history, off the hot path: the records of one turn of the event
 * loop go to Redis in one pipeline per shard, after the jobs' own commands. A record Redis
 * refuses is reported to `onError` (the job's outcome stands; its record is what is missing).
 */
export function attemptHistory(
  writer: HistoryWriter,
  onError: (error: unknown, records: number) => void,
): AttemptHistoryWriter {
  let waiting: AttemptRecord[] = [];
  let scheduled = false;
  const inFlight = new Set<Promise<void>>();
  const flush = (): Promise<void> => {
    scheduled = false;
    const records = waiting;
    waiting = [];
    if (records.length === 0) return Promise.all(inFlight).then(() => {});
    const sent = writer.append(records).catch((error: unknown) => onError(error, records.length));
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
    return Promise.all(inFlight).then(() => {});
  };
  return {
    record(record) {
      waiting.push(record);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}
