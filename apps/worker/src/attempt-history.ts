import type {
  AttemptRecord,
  AttemptRecordOutcome,
  EncodedHistoryRecord,
  EventLedger,
  HistoryWriter,
} from '@groq-webhooks/queue';
import type { AttemptHistory } from './steps/attempt.js';

/** The worker's attempt records, written with their job's completion or gathered per turn. */
export interface AttemptHistoryWriter extends AttemptHistory {
  /** Closing: appends what is still gathered, and the records of jobs never completed. */
  flush(): Promise<void>;
}

/** Outcomes whose job BullMQ completes next (the others fail the job, retry it or put it back). */
const COMPLETING: ReadonlySet<AttemptRecordOutcome> = new Set([
  'completed',
  'skipped',
  'unhandled',
  'stale',
]);

/**
 * Attempt records for the event history, off the hot path. A record of an attempt whose job
 * completes is handed to the ledger, whose finish of the job appends it in the same call (the
 * fast path); the others of one turn of the event loop go to Redis in one call per shard, after
 * the jobs' own commands. A record Redis refuses is reported to `onError` (the job's outcome
 * stands; its record is what is missing).
 */
export function attemptHistory(
  writer: HistoryWriter,
  ledger: Pick<EventLedger, 'recordAtFinish' | 'takeUnfinishedRecords'>,
  onError: (error: unknown, records: number) => void,
): AttemptHistoryWriter {
  let waiting: EncodedHistoryRecord[] = [];
  let scheduled = false;
  const inFlight = new Set<Promise<void>>();
  const send = (): void => {
    scheduled = false;
    const records = waiting;
    waiting = [];
    if (records.length === 0) return;
    const sent = writer
      .appendEncoded(records)
      .catch((error: unknown) => onError(error, records.length));
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
  };
  const gather = (record: EncodedHistoryRecord): void => {
    waiting.push(record);
    if (!scheduled) {
      scheduled = true;
      setImmediate(send);
    }
  };
  return {
    record(record: AttemptRecord, jobId: string) {
      const encoded = writer.encode(record);
      if (COMPLETING.has(record.outcome) && ledger.recordAtFinish(jobId, encoded, gather)) return;
      gather(encoded);
    },
    async flush() {
      for (const record of ledger.takeUnfinishedRecords()) waiting.push(record);
      send();
      await Promise.all(inFlight);
    },
  };
}
