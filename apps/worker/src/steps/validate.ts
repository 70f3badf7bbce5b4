import {
  type EventType,
  type GroqEvent,
  isEventType,
  parseEnvelope,
  payloadProblem,
} from '@groq-webhooks/core';
import { UnrecoverableError } from '@groq-webhooks/queue';
import { type Attempt, giveBackQuietly, type StepDeps } from './attempt.js';

/** An event of a known type whose envelope and payload were checked again. */
export interface ValidEvent {
  readonly event: GroqEvent;
  readonly type: EventType;
}

/**
 * Step 1: the job's event, checked again (the job may come from anywhere that can write Redis).
 * An invalid envelope or payload fails the job at once (`UnrecoverableError`); an unknown type
 * completes it as unhandled (undefined). Either way the attempt ends here, and a claim the job's
 * fetch took is given back, so the event is not held for a lock period.
 */
export async function validate(attempt: Attempt, deps: StepDeps): Promise<ValidEvent | undefined> {
  const parsed = parseEnvelope(attempt.job.data?.event);
  if (!parsed.ok) {
    await giveBackQuietly(attempt, deps);
    deps.logger.error(attempt.line('failed'), `Invalid event in job: ${parsed.problem}`);
    deps.metrics.failed.inc({ type: 'invalid' });
    throw new UnrecoverableError(`Invalid event: ${parsed.problem}`);
  }
  const event = parsed.envelope;
  attempt.eventId = event.id;
  attempt.type = event.type;
  if (!isEventType(event.type)) {
    await giveBackQuietly(attempt, deps);
    deps.logger.warn(attempt.line('unhandled'), 'Unhandled event type');
    deps.metrics.processed.inc({ type: 'unknown' });
    return undefined;
  }
  const type: EventType = event.type;
  const problem = payloadProblem(type, event.data);
  if (problem !== undefined) {
    await giveBackQuietly(attempt, deps);
    deps.logger.error(attempt.line('failed'), `Invalid payload: ${problem}`);
    deps.metrics.failed.inc({ type });
    throw new UnrecoverableError(`Invalid payload for ${type}: ${problem}`);
  }
  // The envelope is valid and its payload fits the type's schema.
  return { event: event as unknown as GroqEvent, type };
}
