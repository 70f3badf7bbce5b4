import {
  type EventType,
  type GroqEvent,
  isEventType,
  parseEnvelope,
  payloadProblem,
} from '@groq-webhooks/core';
import { UnrecoverableError } from '@groq-webhooks/queue';
import { type Attempt, giveBackQuietly, recordAttempt, type StepDeps } from './attempt.js';

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
    const error = new UnrecoverableError(`Invalid event: ${parsed.problem}`);
    recordAttempt(attempt, deps, 'failed', error);
    throw error;
  }
  const event = parsed.envelope;
  attempt.eventId = event.id;
  attempt.type = event.type;
  const replay = attempt.job.data.replay;
  attempt.claimId = typeof replay === 'string' ? replayClaimId(event.id, replay) : event.id;
  if (!isEventType(event.type)) {
    await giveBackQuietly(attempt, deps);
    deps.logger.warn(attempt.line('unhandled'), 'Unhandled event type');
    deps.metrics.processed.inc({ type: 'unknown' });
    recordAttempt(attempt, deps, 'unhandled');
    return undefined;
  }
  const type: EventType = event.type;
  const problem = payloadProblem(type, event.data);
  if (problem !== undefined) {
    await giveBackQuietly(attempt, deps);
    deps.logger.error(attempt.line('failed'), `Invalid payload: ${problem}`);
    deps.metrics.failed.inc({ type });
    const error = new UnrecoverableError(`Invalid payload for ${type}: ${problem}`);
    recordAttempt(attempt, deps, 'failed', error);
    throw error;
  }
  // The envelope is valid and its payload fits the type's schema.
  return { event: event as unknown as GroqEvent, type };
}

/**
 * The idempotency id of an event's re-run by one replay command: its own claim and done-marker,
 * so the event runs again although it is done, and once per replay (SPEC §6).
 */
export function replayClaimId(eventId: string, replayId: string): string {
  return `${eventId}:replay:${replayId}`;
}
