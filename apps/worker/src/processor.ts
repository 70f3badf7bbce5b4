import type { HandlerMap } from '@groq-webhooks/core';
import { type EventJobData, eventIdFromJobId, type Job } from '@groq-webhooks/queue';
import type { Tracer } from '@opentelemetry/api';
import { inAttemptSpan } from './attempt-span.js';
import { Attempt, type StepDeps } from './steps/attempt.js';
import { claim } from './steps/claim.js';
import { takeTurn } from './steps/order.js';
import { runHandler } from './steps/run.js';
import { settle } from './steps/settle.js';
import { validate } from './steps/validate.js';

/** What {@link createProcessor} needs: the handlers, and what the steps share. */
export interface ProcessorDeps extends StepDeps {
  handlers: HandlerMap;
  /** When tracing: every attempt runs inside its own span (`attempt-span.ts`). */
  tracer?: Tracer | undefined;
}

/**
 * The BullMQ processor. Two parameters: with a third BullMQ makes an `AbortController` per job;
 * lock losses reach the handler through the worker's lock events and the held claims.
 */
export type EventProcessor = (
  job: Job<EventJobData, void, string>,
  token: string | undefined,
) => Promise<void>;

/**
 * The per-job algorithm of SPEC §6, one attempt: validate the event → claim it → take its
 * resource's turn → run its handler → settle the attempt. Each step is its own module under
 * `steps/`; what ends an attempt early (an invalid or unknown event, an event already done,
 * busy elsewhere, or stale) ends it inside the step that finds it.
 */
export function createProcessor(deps: ProcessorDeps): EventProcessor {
  const { tracer } = deps;
  async function steps(attempt: Attempt): Promise<void> {
    const valid = await validate(attempt, deps);
    if (valid === undefined) return;
    if (!(await claim(attempt, valid, deps))) return;
    if (!(await takeTurn(attempt, valid, deps))) return;
    const result = await runHandler(attempt, valid, deps.handlers, deps);
    await settle(attempt, valid, result, deps);
  }
  return async function processEvent(job, token) {
    if (token === undefined) throw new Error('BullMQ gave no lock token');
    const attempt = new Attempt(job, token, eventIdFromJobId(job.id ?? '') ?? job.id ?? '');
    if (tracer === undefined) return steps(attempt);
    return inAttemptSpan(tracer, attempt, () => steps(attempt));
  };
}
