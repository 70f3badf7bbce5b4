import { randomBytes } from 'node:crypto';
import { type EventJobData, jobIdFor, jobTurn } from '@groq-webhooks/queue';

/** Distinct resources the benchmark's events are about (per-resource ordering). */
export const BENCH_RESOURCES = 1000;

/**
 * One queued event job shaped as the ingest makes it, for filling a queue before a run. Events
 * are spread over `resources` resources (`data.id`), all with the same `created`; with
 * `tracesSampled`, each carries a trace context as a tracing ingest writes it
 * ({@link benchTraceCarrier}).
 */
export function benchJob(
  id: string,
  index: number,
  created: string,
  resources = BENCH_RESOURCES,
  tracesSampled?: number,
) {
  const event = { id, type: 'resource.created', data: { id: `res_${index % resources}` }, created };
  const data: EventJobData = {
    turn: jobTurn(event),
    event,
    receivedAt: created,
    keyIndex: 0,
    ...(tracesSampled === undefined ? {} : { trace: benchTraceCarrier(index, tracesSampled) }),
  };
  return { name: 'resource.created', data, opts: { jobId: jobIdFor(id) } };
}

/**
 * The W3C `traceparent` of the `index`th job's enqueue span, random ids, sampled for `sampled`
 * of the jobs (evenly: every 100th at 0.01), as the ingest at that sampler writes it: what
 * decides whether the worker records its attempt.
 */
export function benchTraceCarrier(index: number, sampled: number): { traceparent: string } {
  const every = sampled > 0 ? Math.max(1, Math.round(1 / sampled)) : 0;
  const flags = every > 0 && index % every === 0 ? '01' : '00';
  const ids = randomBytes(24).toString('hex');
  return { traceparent: `00-${ids.slice(0, 32)}-${ids.slice(32)}-${flags}` };
}
