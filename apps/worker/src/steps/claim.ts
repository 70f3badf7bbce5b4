import { DelayedError } from '@groq-webhooks/queue';
import { type Attempt, giveBackQuietly, recordAttempt, type StepDeps } from './attempt.js';
import type { ValidEvent } from './validate.js';

/**
 * Step 2: the event's idempotency claim for this attempt (SPEC §6). True: the handler may run.
 * False: the event is done already, and the job completes as skipped. A claim held by a live
 * attempt elsewhere, or this very job still unwinding here, puts the job back for a moment
 * without spending an attempt (`DelayedError`, BullMQ's signal for that).
 */
export async function claim(attempt: Attempt, valid: ValidEvent, deps: StepDeps): Promise<boolean> {
  const { ledger, settings } = deps;
  if (deps.claims.has(attempt.jobId)) {
    // The same job again while its previous run here still unwinds (its lock was lost and the
    // stall checker re-queued it): BullMQ tracks locks by job id, so two runs would clash.
    await giveBackQuietly(attempt, deps);
    await delay(attempt, settings.requeueDelayMs);
    deps.logger.info(
      attempt.line('delayed-busy'),
      'Previous run of this job is still unwinding; job delayed without spending an attempt',
    );
    throw new DelayedError();
  }
  const claimed = await ledger.claim(
    attempt.claimId,
    attempt.jobId,
    attempt.token,
    settings.lockDurationMs,
  );
  if (claimed === 'claimed') return true;
  if (claimed === 'done') {
    deps.logger.info(attempt.line('skipped-done'), 'Event already handled; skipped');
    deps.metrics.processed.inc({ type: valid.type });
    recordAttempt(attempt, deps, 'skipped');
    return false;
  }
  // A dead worker's claim lapses with its lock: look again right then, not a full delay later.
  const left = await ledger.claimTtlMs(attempt.claimId).catch(() => settings.requeueDelayMs);
  await delay(attempt, Math.min(settings.requeueDelayMs, Math.max(left, 0) + 20));
  deps.logger.info(
    attempt.line('delayed-busy'),
    'Event is being handled by another worker; job delayed without spending an attempt',
  );
  throw new DelayedError();
}

function delay(attempt: Attempt, ms: number): Promise<void> {
  return attempt.job.moveToDelayed(Date.now() + ms, attempt.token);
}
