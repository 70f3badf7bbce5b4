import {
  type EventJobData,
  type EventLedger,
  eventIdFromJobId,
  type Worker,
} from '@groq-webhooks/queue';
import type { Logger } from '@groq-webhooks/telemetry';
import type { WorkerMetrics } from './metrics.js';
import { HandlerAbortedError, type HeldClaim } from './steps/attempt.js';

/** What the lock watch needs: the running handlers' claims and where to renew them. */
export interface LockWatchDeps {
  claims: Map<string, HeldClaim>;
  ledger: EventLedger;
  lockDurationMs: number;
  logger: Logger;
  metrics: WorkerMetrics;
}

/**
 * Wires a BullMQ worker's lock events to the running handlers' claims: a claim is renewed with
 * its job's lock, and a handler whose lock (or claim) is lost is aborted, since another worker
 * may run its event once the lock lapses. Also reports stalls, and jobs failed for stalling.
 */
export function watchLocks(worker: Worker<EventJobData, void, string>, deps: LockWatchDeps): void {
  const { claims, logger } = deps;
  worker.on('locksRenewed', ({ jobIds }) => {
    for (const jobId of jobIds) {
      const claim = claims.get(jobId);
      if (claim === undefined) continue;
      claim.renewedAt = Date.now();
      if (claim.resourceKey !== undefined) {
        deps.ledger
          .renewTurn(claim.resourceKey, claim.token, deps.lockDurationMs)
          .catch((error: unknown) =>
            logger.warn({ eventId: claim.eventId, err: error }, 'Could not renew resource turn'),
          );
      }
      deps.ledger.renew(claim.claimId, claim.token, deps.lockDurationMs).then(
        (renewed) => {
          // Still running but no longer ours: another worker may run it, so stop this one.
          if (!renewed && claims.get(jobId) === claim) {
            logger.warn({ eventId: claim.eventId, jobId }, 'Idempotency claim lost; aborting');
            claim.abort(new HandlerAbortedError('Handler aborted: idempotency claim lost'));
          }
        },
        (error: unknown) =>
          logger.warn({ eventId: claim.eventId, err: error }, 'Could not renew claim'),
      );
    }
  });
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const jobId of jobIds) {
      logger.warn({ jobId, eventId: eventIdFromJobId(jobId) }, 'Job lock lost; aborting handler');
      claims.get(jobId)?.abort(new HandlerAbortedError('Handler aborted: job lock lost'));
    }
  });
  worker.on('stalled', (jobId) => {
    logger.warn(
      { jobId, eventId: eventIdFromJobId(jobId) },
      'Job stalled (its worker stopped renewing the lock); back to the queue',
    );
  });
  worker.on('failed', (job, error) => {
    // Failures the processor never saw: a job that stalled more than MAX_STALLED_COUNT times.
    if (/allowable limit/.test(error.message)) {
      deps.metrics.failed.inc({ type: job?.name ?? 'unknown' });
      logger.error(
        { eventId: eventIdFromJobId(job?.id ?? ''), type: job?.name, outcome: 'failed' },
        error.message,
      );
    }
  });
  let lastErrorLog = 0;
  worker.on('error', (error) => {
    // During a Redis outage BullMQ reports every retry; one line per 5 s is enough.
    if (Date.now() - lastErrorLog < 5000) return;
    lastErrorLog = Date.now();
    logger.warn({ err: { message: error.message } }, 'Queue connection error');
  });
}

/**
 * Every quarter lock period, aborts handlers whose job lock BullMQ stopped renewing without
 * reporting a failure (its lock tracking is keyed by job id, so an overlapping run of the same
 * job can untrack another's). Such a lock and its claim lapse, and the stall checker hands the
 * job to another run; this handler must not still be running then. Returns the timer.
 */
export function watchRenewals(
  claims: Map<string, HeldClaim>,
  lockDurationMs: number,
  logger: Logger,
): NodeJS.Timeout {
  const timer = setInterval(
    () => {
      const limit = lockDurationMs * 0.75;
      for (const [jobId, claim] of claims) {
        if (Date.now() - claim.renewedAt <= limit) continue;
        logger.warn(
          { jobId, eventId: claim.eventId },
          'Job lock no longer renewed; aborting handler',
        );
        claim.abort(new HandlerAbortedError('Handler aborted: job lock no longer renewed'));
      }
    },
    Math.max(100, lockDurationMs / 4),
  );
  timer.unref();
  return timer;
}
