import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import {
  type EventQueue,
  type Job,
  MAX_RENDER_DEPTH,
  nestedDeeperThan,
  tooDeepProblem,
} from '@groq-webhooks/queue';
import type { Logger } from '@groq-webhooks/telemetry';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Hono } from 'hono';

type RetryOptions = Parameters<Job['retry']>[1];

/** Job fields Bull Board serialises as they are stored, and so can pass a formatter first. */
const FORMATTED_FIELDS = ['data', 'returnValue', 'progress'] as const;
/** Jobs whose unrenderable fields were logged already, so a polling page logs each once. */
const MAX_REPORTED = 1000;

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

/**
 * A Bull Board formatter that passes a field through unless it is nested too deeply to
 * serialise: Bull Board answers a whole page of jobs with one `JSON.stringify`, so one such job
 * would make the page a 500 and hide every healthy job on it. Such a field is shown as a one-line
 * placeholder instead, and logged once per event.
 */
function renderable(
  field: (typeof FORMATTED_FIELDS)[number],
  reported: Set<string>,
  logger: Logger | undefined,
): (value: unknown) => unknown {
  return (value) => {
    if (!nestedDeeperThan(value, MAX_RENDER_DEPTH)) return value;
    const problem = `${field} ${tooDeepProblem()}`;
    const eventId = eventIdOf(value);
    const key = `${field}:${eventId ?? '?'}`;
    if (!reported.has(key)) {
      if (reported.size >= MAX_REPORTED) reported.clear();
      reported.add(key);
      logger?.warn({ eventId, field }, `job ${problem}: shown as a placeholder`);
    }
    return { unrenderable: problem };
  };
}

/** The event id of an event job's data, when it has one (read at the top: no deep walk). */
function eventIdOf(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || !('event' in data)) return undefined;
  const event = data.event;
  if (typeof event !== 'object' || event === null || !('id' in event)) return undefined;
  return typeof event.id === 'string' ? event.id : undefined;
}

/** Bull Board for the shard queues, as a Hono app to mount at `basePath`. */
export function bullBoard(queues: readonly EventQueue[], basePath: string, logger?: Logger): Hono {
  const serverAdapter = new HonoAdapter(serveStatic);
  serverAdapter.setBasePath(basePath);
  const reported = new Set<string>();
  createBullBoard({
    queues: queues.map((queue) => {
      // bull-board is typed against its own copy of BullMQ's declarations.
      const adapter = new FreshBudgetAdapter(queue as never);
      for (const field of FORMATTED_FIELDS) {
        adapter.setFormatter(field, renderable(field, reported, logger));
      }
      return adapter;
    }),
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
