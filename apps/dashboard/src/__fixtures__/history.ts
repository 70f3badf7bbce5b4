import type { AttemptRecordOutcome, HistoryRecord } from '@groq-webhooks/queue';

/** One attempt of {@link eventRecords}: its outcome, and its error when it failed. */
export interface SeedAttempt {
  outcome: AttemptRecordOutcome;
  error?: string;
  errorType?: string;
}

/**
 * The history records of one event as the ingest and the worker write them: its delivery (with
 * a payload carrying `data`) received at `at`, then its attempts a second apart, 40 ms each.
 */
export function eventRecords(
  id: string,
  type: string,
  at: number,
  data: Record<string, unknown>,
  attempts: readonly SeedAttempt[],
): HistoryRecord[] {
  const payload = JSON.stringify({ id, type, data, created: '2026-11-28T10:00:00Z' });
  return [
    {
      kind: 'delivery',
      eventId: id,
      type,
      created: '2026-11-28T10:00:00Z',
      receivedAt: at,
      keyIndex: 0,
      outcome: 'received',
      payload,
    },
    ...attempts.map(
      (attempt, i): HistoryRecord => ({
        kind: 'attempt',
        eventId: id,
        type,
        attempt: i + 1,
        startedAt: at + (i + 1) * 1000,
        endedAt: at + (i + 1) * 1000 + 40,
        worker: 'groq-worker-42',
        ...attempt,
      }),
    ),
  ];
}
