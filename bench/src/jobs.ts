import { type EventJobData, jobIdFor } from '@groq-webhooks/queue';

/** One queued event job shaped as the ingest makes it, for filling a queue before a run. */
export function benchJob(id: string, index: number, created: string) {
  const data: EventJobData = {
    event: { id, type: 'resource.created', data: { id: `res_${index}` }, created },
    receivedAt: created,
    keyIndex: 0,
  };
  return { name: 'resource.created', data, opts: { jobId: jobIdFor(id) } };
}
