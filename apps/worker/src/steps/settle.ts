import { DelayedError, UnrecoverableError } from '@groq-webhooks/queue';
import { writeLine } from '@groq-webhooks/telemetry';
import {
  type Attempt,
  recordAttempt,
  releaseQuietly,
  ShutdownAbortError,
  type StepDeps,
} from './attempt.js';
import type { RunResult } from './run.js';
import type { ValidEvent } from './validate.js';

/**
 * Step 4: ends the attempt as its handler's run ended (SPEC §6). Success: the event is marked
 * done (on the fast path by the job's completion, which BullMQ sends when the processor returns)
 * and the job completes. Failure: the claim is released and the error thrown, so BullMQ retries
 * the job with backoff or, for a non-retryable error or the last attempt, fails it; a handler
 * aborted at shutdown is put back without spending an attempt.
 */
export async function settle(
  attempt: Attempt,
  valid: ValidEvent,
  result: RunResult,
  deps: StepDeps,
): Promise<void> {
  const { ledger, metrics } = deps;
  const eventId = attempt.claimId;
  const turn = attempt.turn;
  if (result.error === undefined) {
    try {
      await ledger.markHandled(
        eventId,
        attempt.jobId,
        turn === undefined ? undefined : { turn, owner: attempt.token },
      );
    } catch {
      await markedLate(attempt, valid, deps);
      return;
    }
    metrics.processed.inc({ type: valid.type });
    writeLine(deps.logger, 'info', attempt.line('completed'), 'Event handled');
    recordAttempt(attempt, deps, 'completed');
    return;
  }
  if (result.succeeded) {
    // It finished its work as it was being stopped: the effect happened, so the event is done.
    // Putting it back would run the handler again.
    await markedLate(attempt, valid, deps);
    return;
  }
  if (result.settled) await releaseQuietly(deps, eventId, attempt.token, turn);
  else settleLater(result.run, attempt, eventId, deps);
  const error = result.error;
  if (error instanceof ShutdownAbortError) {
    await attempt.job.moveToDelayed(Date.now() + deps.settings.requeueDelayMs, attempt.token);
    deps.logger.warn(
      attempt.line('delayed-shutdown'),
      'Handler aborted at shutdown; job put back without spending an attempt',
    );
    throw new DelayedError();
  }
  const failure = isNonRetryable(error) ? unrecoverable(error) : error;
  const willRetry =
    !(failure instanceof UnrecoverableError) && attempt.number < (attempt.job.opts.attempts ?? 1);
  (willRetry ? metrics.retried : metrics.failed).inc({ type: valid.type });
  deps.logger.warn(
    {
      ...attempt.line(willRetry ? 'retrying' : 'failed'),
      error: error.message,
      errorType: error.name,
    },
    willRetry ? 'Handler failed; will retry' : 'Handler failed; no attempts left',
  );
  recordAttempt(attempt, deps, willRetry ? 'retrying' : 'failed', error);
  throw failure;
}

/** Marks a handled event done through a Redis hiccup (its first mark failed, or it was aborted). */
async function markedLate(attempt: Attempt, valid: ValidEvent, deps: StepDeps): Promise<void> {
  const turn = attempt.turn;
  await deps.ledger.markDone(
    attempt.claimId,
    turn === undefined ? undefined : { turn, owner: attempt.token },
  );
  deps.metrics.processed.inc({ type: valid.type });
  deps.logger.info(
    attempt.line('completed'),
    'Event handled (marked done late: it finished as it was aborted, or Redis refused the first mark)',
  );
  recordAttempt(attempt, deps, 'completed');
}

/**
 * A handler that ignored its signal still runs: its claim (and turn) stay, expiring with their
 * TTL, so no retry runs beside it. If it finishes after all, its effect counts: the event is
 * marked done.
 */
function settleLater(run: Promise<void>, attempt: Attempt, eventId: string, deps: StepDeps): void {
  const { token, turn } = attempt;
  run.then(
    async () => {
      try {
        if (await deps.ledger.renew(eventId, token, deps.settings.lockDurationMs)) {
          await deps.ledger.markDone(
            eventId,
            turn === undefined ? undefined : { turn, owner: token },
          );
        }
      } catch {
        // Redis unreachable: the claim expires and the event is retried.
      }
    },
    () => releaseQuietly(deps, eventId, token, turn),
  );
}

function isNonRetryable(error: Error): boolean {
  return error.name === 'NonRetryableError' || error.name === 'UnrecoverableError';
}

/** BullMQ's "fail now" error, keeping the handler's message and stack for `failed show`. */
function unrecoverable(error: Error): UnrecoverableError {
  if (error instanceof UnrecoverableError) return error;
  const converted = new UnrecoverableError(error.message);
  if (error.stack !== undefined) converted.stack = error.stack;
  return converted;
}
