import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';

/** An event envelope as tests send it (SPEC §3). */
export interface TestEnvelope {
  id: string;
  type: string;
  data: Record<string, unknown>;
  created: string;
  [extra: string]: unknown;
}

/**
 * A `resource.created` envelope with a fresh `evt_<uuid>` id, empty data and the current time;
 * `overrides` replace any field.
 */
export function testEnvelope(overrides: Partial<TestEnvelope> = {}): TestEnvelope {
  return {
    id: `evt_${randomUUID()}`,
    type: 'resource.created',
    data: {},
    created: new Date().toISOString(),
    ...overrides,
  };
}

/** What an ingest puts in a job for `event` (the queue package's `EventJobData`). */
export function testJobData<E>(
  event: E,
  receivedAt = new Date().toISOString(),
): { event: E; receivedAt: string; keyIndex: number } {
  return { event, receivedAt, keyIndex: 0 };
}

/** A pino destination that keeps every JSON line written to it, parsed. */
export function captureLines(): { lines: Record<string, unknown>[]; destination: Writable } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, destination };
}
