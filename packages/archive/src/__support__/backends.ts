import { startEmbeddedPostgres } from '@groq-webhooks/local';
import type { AttemptRecord, DeliveryRecord } from '@groq-webhooks/queue';
import { startPostgres, type TestPostgres } from '@groq-webhooks/testing';

/** A database for one test file: a throwaway PostgreSQL server, or the embedded PGlite one. */
export interface TestDatabase {
  url: string;
  /** The throwaway server (undefined for the embedded one). */
  server: TestPostgres | undefined;
  close(): Promise<void>;
}

/** Both history stores the issue asks the tests to run against. */
export const BACKENDS: readonly { name: string; start: () => Promise<TestDatabase> }[] = [
  {
    name: 'PostgreSQL',
    async start() {
      const server = await startPostgres();
      const url = await server.createDatabase('groq_archive');
      return { url, server, close: () => server.cleanup() };
    },
  },
  {
    name: 'embedded PGlite',
    async start() {
      const embedded = await startEmbeddedPostgres();
      return { url: embedded.url, server: undefined, close: () => embedded.close() };
    },
  },
];

/** Base time of the records the tests make: 2026-11-28T10:00:00Z. */
export const T0 = Date.parse('2026-11-28T10:00:00Z');

/** A `received` delivery with its payload. */
export function received(
  eventId: string,
  type = 'resource.created',
  at = T0,
  outcome: DeliveryRecord['outcome'] = 'received',
): DeliveryRecord {
  const payload = JSON.stringify({
    id: eventId,
    type,
    data: { id: `res_${eventId}` },
    created: '2026-11-28T09:59:59Z',
  });
  return {
    kind: 'delivery',
    eventId,
    type,
    created: '2026-11-28T09:59:59Z',
    receivedAt: at,
    keyIndex: 0,
    outcome,
    ...(outcome === 'duplicate' ? {} : { payload }),
  };
}

/** An attempt that started at `at` and took 5 ms. */
export function attempt(
  eventId: string,
  n: number,
  outcome: AttemptRecord['outcome'],
  at = T0 + n * 1000,
  extra: Partial<AttemptRecord> = {},
): AttemptRecord {
  return {
    kind: 'attempt',
    eventId,
    type: 'resource.created',
    attempt: n,
    startedAt: at,
    endedAt: at + 5,
    worker: 'groq-worker-test',
    outcome,
    ...(outcome === 'retrying' || outcome === 'failed'
      ? { error: `boom ${n}`, errorType: 'Error' }
      : {}),
    ...extra,
  };
}
