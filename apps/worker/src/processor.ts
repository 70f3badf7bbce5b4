import {
  type EventType,
  type GroqEvent,
  type HandlerContext,
  type HandlerMap,
  isEventType,
  parseEnvelope,
  payloadProblem,
} from '@groq-webhooks/core';
import {
  claimedAtFetch,
  DelayedError,
  type EventJobData,
  eventIdFromJobId,
  type IdempotencyStore,
  type Job,
  type JobFinisher,
  retryDoneMark,
  UnrecoverableError,
} from '@groq-webhooks/queue';
import { type Logger, writeLine } from '@groq-webhooks/telemetry';
import type { WorkerMetrics } from './metrics.js';

/** How an attempt ended, as written in its log line. */
export type AttemptOutcome =
  | 'completed'
  | 'failed'
  | 'retrying'
  | 'skipped-done'
  | 'unhandled'
  | 'delayed-busy'
  | 'delayed-shutdown';

/** The attempt ran longer than `HANDLER_TIMEOUT_MS`; it is retried like any failure. */
export class HandlerTimeoutError extends Error {
  override name = 'HandlerTimeoutError';
}

/** The handler was aborted from outside: lost job lock, lost claim, or cancellation. */
export class HandlerAbortedError extends Error {
  override name = 'HandlerAbortedError';
}

/** The worker's shutdown grace period ended before the handler did. */
export class ShutdownAbortError extends Error {
  override name = 'ShutdownAbortError';
}

/** Timing settings of the processor. */
export interface ProcessorSettings {
  /** Claim TTL: the job lock duration (the claim is renewed with the lock). */
  lockDurationMs: number;
  handlerTimeoutMs: number;
  idempotencyTtlSeconds: number;
  /** Delay before a job whose event is claimed elsewhere (or interrupted by shutdown) is tried again. */
  requeueDelayMs: number;
}

/** An idempotency claim held by a running handler. */
export interface HeldClaim {
  eventId: string;
  token: string;
  /** When BullMQ last renewed the job's lock (or when the claim was taken). */
  renewedAt: number;
  /** Aborts the handler's signal. */
  abort: (reason: Error) => void;
}

/** What {@link createProcessor} needs. */
export interface ProcessorDeps {
  handlers: HandlerMap;
  store: IdempotencyStore;
  /**
   * On a single Redis: claims taken when BullMQ fetched the job, and done-markers written when
   * it finishes the job (one round trip per job). Without it (a Cluster), each is its own command.
   */
  finisher?: JobFinisher | undefined;
  logger: Logger;
  metrics: WorkerMetrics;
  settings: ProcessorSettings;
  /**
   * Aborted when the shutdown grace period ends. A job starting after that is aborted at once;
   * the worker aborts the running ones through their claims ({@link shutdownAbortError}).
   */
  shutdown: AbortSignal;
  /**
   * Claims of running handlers by job id, so the worker can renew them with the job locks and
   * abort their handlers.
   */
  claims: Map<string, HeldClaim>;
  /** Milliseconds left on an event's claim (negative when there is none). */
  claimTtlMs: (eventId: string) => Promise<number>;
}

/**
 * The BullMQ processor. Two parameters: with a third BullMQ makes an `AbortController` per job;
 * lock losses reach the handler through the worker's lock events and {@link HeldClaim.abort}.
 */
export type EventProcessor = (
  job: Job<EventJobData, void, string>,
  token: string | undefined,
) => Promise<void>;

/** How long an aborted handler may take to settle before the attempt ends without it. */
const ABORT_SETTLE_MS = 250;
type AnyHandler = (event: GroqEvent, ctx: HandlerContext) => Promise<void> | void;

/**
 * The per-job algorithm of SPEC §6: re-validate the envelope, dispatch by type, two-phase
 * idempotency (claim → handler → done, or release), timeout and abort through `ctx.signal`.
 */
export function createProcessor(deps: ProcessorDeps): EventProcessor {
  const { store, settings, metrics } = deps;

  return async function processEvent(job, token) {
    const started = performance.now();
    const attempt = job.attemptsMade + 1;
    const elapsed = () => Math.round(performance.now() - started);
    // Fetching the job may have claimed its event already (JobFinisher): an attempt that ends
    // before its handler runs gives that claim back, so the event is not held for a lock period.
    const fetchClaimed = token !== undefined && job.data != null && claimedAtFetch(job.data, token);
    const parsed = parseEnvelope(job.data?.event);
    if (!parsed.ok) {
      const eventId = eventIdFromJobId(job.id ?? '');
      if (fetchClaimed && eventId !== undefined) await releaseQuietly(eventId, token);
      deps.logger.error(
        {
          eventId: eventId ?? job.id,
          type: job.name,
          attempt,
          durationMs: elapsed(),
          outcome: 'failed',
        },
        `Invalid event in job: ${parsed.problem}`,
      );
      metrics.failed.inc({ type: 'invalid' });
      throw new UnrecoverableError(`Invalid event: ${parsed.problem}`);
    }
    const event = parsed.envelope;
    // Written out, not spread from a shared object: an object spread costs ~2.5 µs here.
    const line = (outcome: AttemptOutcome) => ({
      eventId: event.id,
      type: event.type,
      attempt,
      durationMs: elapsed(),
      outcome,
    });
    if (!isEventType(event.type)) {
      if (fetchClaimed) await releaseQuietly(event.id, token);
      deps.logger.warn(line('unhandled'), 'Unhandled event type');
      metrics.processed.inc({ type: 'unknown' });
      return;
    }
    const type: EventType = event.type;
    const problem = payloadProblem(type, event.data);
    if (problem !== undefined) {
      if (fetchClaimed) await releaseQuietly(event.id, token);
      deps.logger.error(line('failed'), `Invalid payload: ${problem}`);
      metrics.failed.inc({ type });
      throw new UnrecoverableError(`Invalid payload for ${type}: ${problem}`);
    }
    if (token === undefined) throw new Error('BullMQ gave no lock token');
    const jobId = job.id ?? '';
    if (deps.claims.has(jobId)) {
      // The same job again while its previous run here still unwinds (its lock was lost and the
      // stall checker re-queued it): BullMQ tracks locks by job id, so two runs would clash.
      if (fetchClaimed) await releaseQuietly(event.id, token);
      await job.moveToDelayed(Date.now() + settings.requeueDelayMs, token);
      deps.logger.info(
        line('delayed-busy'),
        'Previous run of this job is still unwinding; job delayed without spending an attempt',
      );
      throw new DelayedError();
    }

    const claim = fetchClaimed
      ? 'claimed'
      : await store.claim(event.id, token, settings.lockDurationMs);
    if (claim === 'done') {
      deps.logger.info(line('skipped-done'), 'Event already handled; skipped');
      metrics.processed.inc({ type });
      return;
    }
    if (claim === 'busy') {
      // A dead worker's claim lapses with its lock: look again right then, not a full delay later.
      const left = await deps.claimTtlMs(event.id).catch(() => settings.requeueDelayMs);
      const wait = Math.min(settings.requeueDelayMs, Math.max(left, 0) + 20);
      await job.moveToDelayed(Date.now() + wait, token);
      deps.logger.info(
        line('delayed-busy'),
        'Event is being handled by another worker; job delayed without spending an attempt',
      );
      throw new DelayedError();
    }

    const abort = new AttemptAbort();
    // Aborted by the worker on a lost lock or claim, or at the end of the shutdown grace period.
    deps.claims.set(jobId, {
      eventId: event.id,
      token,
      renewedAt: Date.now(),
      abort: (reason) => abort.abort(reason),
    });
    const timer = setTimeout(
      () =>
        abort.abort(
          new HandlerTimeoutError(`Handler timed out after ${settings.handlerTimeoutMs} ms`),
        ),
      settings.handlerTimeoutMs,
    );
    if (deps.shutdown.aborted) abort.abort(shutdownAbortError());

    const ctx = new AttemptContext(event.id, event.type, attempt, abort, deps.logger);
    // The map's type ties each handler to its own payload; here the type is only known at run time.
    const handler = deps.handlers[type] as unknown as AnyHandler;
    let settled = false;
    let succeeded = false;
    const run = (async () => {
      try {
        await handler(event as unknown as GroqEvent, ctx);
        succeeded = true;
      } finally {
        settled = true;
      }
    })();
    const handlerStarted = performance.now();
    const observeDuration = () =>
      metrics.handlerDuration.observe({ type }, (performance.now() - handlerStarted) / 1000);
    try {
      await abort.race(run);
      observeDuration();
      // With a finisher the marker is written by the job's finish, which BullMQ sends as soon as
      // this returns; Redis refusing it fails that finish, so the job is never completed unmarked.
      if (deps.finisher !== undefined) deps.finisher.markDoneOnFinish(jobId, event.id);
      else await store.markDone(event.id, settings.idempotencyTtlSeconds);
      metrics.processed.inc({ type });
      writeLine(deps.logger, 'info', line('completed'), 'Event handled');
    } catch (thrown) {
      observeDuration();
      const error = abort.reason ?? toError(thrown);
      // A handler that honours its signal gets a moment to unwind before its claim is released.
      if (!settled) await Promise.race([run.catch(() => {}), delay(ABORT_SETTLE_MS)]);
      if (succeeded) {
        // It finished its work (as it was being stopped, or its first done-mark failed): the
        // effect happened, so the event is done. Putting it back would run the handler again.
        await markDoneRetrying(event.id);
        metrics.processed.inc({ type });
        deps.logger.info(
          line('completed'),
          'Event handled (marked done late: it finished as it was aborted, or Redis refused the first mark)',
        );
        return;
      }
      if (settled) await releaseQuietly(event.id, token);
      else settleLater(run, event.id, token);
      if (error instanceof ShutdownAbortError) {
        await job.moveToDelayed(Date.now() + settings.requeueDelayMs, token);
        deps.logger.warn(
          line('delayed-shutdown'),
          'Handler aborted at shutdown; job put back without spending an attempt',
        );
        throw new DelayedError();
      }
      const failure = isNonRetryable(error) ? unrecoverable(error) : error;
      const willRetry =
        !(failure instanceof UnrecoverableError) && attempt < (job.opts.attempts ?? 1);
      (willRetry ? metrics.retried : metrics.failed).inc({ type });
      deps.logger.warn(
        {
          ...line(willRetry ? 'retrying' : 'failed'),
          error: error.message,
          errorType: error.name,
        },
        willRetry ? 'Handler failed; will retry' : 'Handler failed; no attempts left',
      );
      throw failure;
    } finally {
      clearTimeout(timer);
      deps.claims.delete(jobId);
    }
  };

  /** Marks a handled event done, retrying through a short Redis hiccup. */
  function markDoneRetrying(eventId: string): Promise<void> {
    return retryDoneMark(() => store.markDone(eventId, settings.idempotencyTtlSeconds));
  }

  async function releaseQuietly(eventId: string, token: string): Promise<void> {
    try {
      await store.release(eventId, token);
    } catch (error) {
      // The claim then expires with its TTL (one lock duration); the retry waits that long.
      deps.logger.warn({ eventId, err: toError(error) }, 'Could not release claim');
    }
  }

  /**
   * A handler that ignored its signal still runs: its claim stays (expiring with its TTL) so no
   * retry runs beside it. If it finishes after all, its effect counts: the event is marked done.
   */
  function settleLater(run: Promise<void>, eventId: string, token: string): void {
    run.then(
      async () => {
        try {
          if (await store.renew(eventId, token, settings.lockDurationMs)) {
            await store.markDone(eventId, settings.idempotencyTtlSeconds);
          }
        } catch {
          // Redis unreachable: the claim expires and the event is retried.
        }
      },
      () => releaseQuietly(eventId, token),
    );
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The error a handler's signal carries when the shutdown grace period ends. */
export function shutdownAbortError(): ShutdownAbortError {
  return new ShutdownAbortError('Handler aborted: shutdown grace period ended');
}

/**
 * One attempt's abort switch. The `AbortController` behind `ctx.signal` (costly to create in
 * Node, and most handlers never look at it) is only made when the handler reads the signal.
 */
class AttemptAbort {
  reason: Error | undefined = undefined;
  #controller: AbortController | undefined = undefined;
  #reject: ((reason: Error) => void) | undefined = undefined;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.reason !== undefined) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(reason);
  }

  /** Settles as `run` does, unless the attempt is aborted first: then rejects with the reason. */
  race(run: Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.reason !== undefined) {
        reject(this.reason);
        return;
      }
      this.#reject = reject;
      run.then(resolve, reject);
    });
  }
}

/** The handler's `ctx`; its signal and its child logger are made when first read. */
class AttemptContext implements HandlerContext {
  readonly eventId: string;
  readonly attempt: number;
  readonly #type: string;
  readonly #abort: AttemptAbort;
  readonly #parent: Logger;
  #logger: Logger | undefined = undefined;

  constructor(eventId: string, type: string, attempt: number, abort: AttemptAbort, parent: Logger) {
    this.eventId = eventId;
    this.attempt = attempt;
    this.#type = type;
    this.#abort = abort;
    this.#parent = parent;
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get logger(): Logger {
    this.#logger ??= this.#parent.child({
      eventId: this.eventId,
      type: this.#type,
      attempt: this.attempt,
    });
    return this.#logger;
  }
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

function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value)));
}
