import { type EventJobData, jobIdFor, jobTurn } from '@groq-webhooks/queue';

/** Distinct resources the benchmark's events are about (per-resource ordering). */
export const BENCH_RESOURCES = 1000;

/**
 * One queued event job shaped as the ingest makes it, for filling a queue before a run. Events
 * are spread over `resources` resources (`data.id`), all with the same `created`.
 */
export function benchJob(id: string, index: number, created: string, resources = BENCH_RESOURCES) {
  const event = { id, type: 'resource.created', data: { id: `res_${index % resources}` }, created };
  const data: EventJobData = {
    turn: jobTurn(event),
    event,
    receivedAt: created,
    keyIndex: 0,
  };
  return { name: 'resource.created', data, opts: { jobId: jobIdFor(id) } };
}
