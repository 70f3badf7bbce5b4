import { Counter, Gauge, Histogram, type Registry } from '@groq-webhooks/telemetry';

/** The worker's metrics port serves its registry with the shared listener. */
export { metricsListener } from '@groq-webhooks/telemetry';

/** Queue states reported by `groq_worker_queue_depth`. */
export const QUEUE_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'failed',
  'completed',
] as const;

/** One of {@link QUEUE_STATES}. */
export type QueueState = (typeof QUEUE_STATES)[number];

/** The worker's Prometheus metrics. */
export interface WorkerMetrics {
  processed: Counter<'type'>;
  stale: Counter<'type'>;
  failed: Counter<'type'>;
  retried: Counter<'type'>;
  handlerDuration: Histogram<'type'>;
}

/**
 * Registers the worker's metrics on `registry`. `queueDepth` is called on every scrape; it may
 * return undefined (Redis unreachable) to keep the last known values.
 */
export function createWorkerMetrics(
  registry: Registry,
  queueDepth: () => Promise<Record<QueueState, number> | undefined>,
): WorkerMetrics {
  const registers = [registry];
  const metrics: WorkerMetrics = {
    processed: new Counter({
      name: 'groq_worker_jobs_processed_total',
      help: 'Events whose job completed (handled, skipped as done or stale, or unhandled type), by type',
      labelNames: ['type'],
      registers,
    }),
    stale: new Counter({
      name: 'groq_worker_jobs_stale_total',
      help: 'Events completed as stale: older than the newest applied to their resource (or than its deletion), by type',
      labelNames: ['type'],
      registers,
    }),
    failed: new Counter({
      name: 'groq_worker_jobs_failed_total',
      help: 'Events whose job failed for good, by type',
      labelNames: ['type'],
      registers,
    }),
    retried: new Counter({
      name: 'groq_worker_jobs_retried_total',
      help: 'Failed attempts that will be retried, by type',
      labelNames: ['type'],
      registers,
    }),
    handlerDuration: new Histogram({
      name: 'groq_worker_handler_duration_seconds',
      help: 'Handler run time per attempt, by type',
      labelNames: ['type'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
  };
  new Gauge({
    name: 'groq_worker_queue_depth',
    help: 'Jobs in the event queue (all shards), by state',
    labelNames: ['state'],
    registers,
    async collect() {
      const depth = await queueDepth();
      if (depth === undefined) return;
      for (const state of QUEUE_STATES) this.set({ state }, depth[state]);
    },
  });
  return metrics;
}
