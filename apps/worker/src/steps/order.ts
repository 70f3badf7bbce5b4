import { createdMillis, resourceKeyOf } from '@groq-webhooks/core';
import { DelayedError } from '@groq-webhooks/queue';
import { type Attempt, recordAttempt, releaseQuietly, type StepDeps } from './attempt.js';
import type { ValidEvent } from './validate.js';

/** Shortest and longest wait before a job whose resource is busy is looked at again. */
const TURN_WAIT_MIN_MS = 20;
const TURN_WAIT_MAX_MS = 120;

/**
 * Step 3: the event's turn at its resource (SPEC §6, per-resource ordering, unless the handler
 * map says `ordering: 'none'`). True: the handler may run, holding the turn until the attempt
 * ends. False: the event is older than the newest applied to its resource, or than its
 * deletion: it completes as stale without running. While another event of the resource runs
 * anywhere, the job is put back for a short, jittered moment without spending an attempt.
 * Events that name no resource run as they come.
 */
export async function takeTurn(
  attempt: Attempt,
  valid: ValidEvent,
  deps: StepDeps,
): Promise<boolean> {
  if (deps.ordering === 'none') return true;
  const key = resourceKeyOf(valid.type, valid.event.data);
  if (key === undefined) return true;
  attempt.resourceKey = key;
  const turn = { key, createdMs: createdMillis(valid.event.created), type: valid.type };
  const { ledger, settings } = deps;
  const taken = await ledger.takeTurn(turn, attempt.token, settings.lockDurationMs, attempt.jobId);
  if (taken.outcome === 'acquired') {
    attempt.turn = turn;
    return true;
  }
  if (taken.outcome === 'stale') {
    await ledger.markHandled(attempt.claimId, attempt.jobId);
    deps.metrics.processed.inc({ type: valid.type });
    deps.metrics.stale.inc({ type: valid.type });
    recordAttempt(attempt, deps, 'stale');
    deps.logger.info(
      { ...attempt.line('stale'), resourceKey: key },
      taken.deleted
        ? 'Event older than its resource\u2019s deletion; completed as stale'
        : 'Event older than the newest applied to its resource; completed as stale',
    );
    return false;
  }
  // Busy: its claim is given up too, or the retry (a new lock token) would find it held.
  await releaseQuietly(deps, attempt.claimId, attempt.token, undefined);
  const wait = TURN_WAIT_MIN_MS + Math.floor(Math.random() * (TURN_WAIT_MAX_MS - TURN_WAIT_MIN_MS));
  const due = Date.now() + Math.min(wait, taken.heldForMs + TURN_WAIT_MIN_MS);
  await attempt.job.moveToDelayed(due, attempt.token);
  await ledger.noteTurnWait(attempt.job.queueQualifiedName, attempt.jobId, due).catch(() => {});
  deps.logger.debug(
    { ...attempt.line('delayed-resource'), resourceKey: key },
    'Another event of this resource is running; job delayed without spending an attempt',
  );
  throw new DelayedError();
}
