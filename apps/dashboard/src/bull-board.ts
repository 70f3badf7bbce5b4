import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import type { EventQueue, Job } from '@groq-webhooks/queue';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Hono } from 'hono';

type RetryOptions = Parameters<Job['retry']>[1];

/**
 * Bull Board's Retry keeps the attempts already made, so a job that used its whole budget
 * would get one more try. Here, as in the CLI and the JSON API, a retry starts a fresh budget.
 */
function withFreshBudget<J extends Job | undefined>(job: J): J {
  if (job !== undefined) {
    const retry = job.retry.bind(job);
    job.retry = (state, options?: RetryOptions) =>
      retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true, ...options });
  }
  return job;
}

/** A Bull Board queue adapter whose retries reset the attempt budget. */
class FreshBudgetAdapter extends BullMQAdapter {
  override async getJob(id: string): Promise<Job | undefined> {
    return withFreshBudget(await super.getJob(id));
  }

  override async getJobs(
    ...args: Parameters<BullMQAdapter['getJobs']>
  ): ReturnType<BullMQAdapter['getJobs']> {
    return (await super.getJobs(...args)).map(withFreshBudget);
  }
}

/** Bull Board for the shard queues, as a Hono app to mount at `basePath`. */
export function bullBoard(queues: readonly EventQueue[], basePath: string): Hono {
  const serverAdapter = new HonoAdapter(serveStatic);
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    // bull-board is typed against its own copy of BullMQ's declarations.
    queues: queues.map((queue) => new FreshBudgetAdapter(queue as never)),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'groq-webhooks',
        miscLinks: [{ text: 'Event history', url: '/events' }],
      },
    },
  });
  return serverAdapter.registerPlugin();
}
