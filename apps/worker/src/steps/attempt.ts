import type { HandlerContext, Ordering } from '@groq-webhooks/core';
import type {
  AttemptRecord,
  AttemptRecordOutcome,
  EventJobData,
  EventLedger,
  Job,
  ResourceTurn,
} from '@groq-webhooks/queue';
import type { Logger, TraceLogFields } from '@groq-webhooks/telemetry';
import { type Context, context } from '@opentelemetry/api';
import type { WorkerMetrics } from '../metrics.js';

/** How an attempt ended, as written in its log line. */
export type AttemptOutcome =
  | 'completed'
  | 'failed'
  | 'retrying'
  | 'skipped-done'
  | 'stale'
  | 'unhandled'
  | 'delayed-busy'
  | 'delayed-resource'
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

/** The error a handler's signal carries when the shutdown grace period ends. */
export function shutdownAbortError(): ShutdownAbortError {
  return new ShutdownAbortError('Handler aborted: shutdown grace period ended');
}

/** Timing settings of the processor. */
export interface ProcessorSettings {
  /** Claim TTL: the job lock duration (the claim is renewed with the lock). */
  lockDurationMs: number;
  handlerTimeoutMs: number;
  /** Delay before a job whose event is claimed elsewhere (or interrupted by shutdown) is tried again. */
  requeueDelayMs: number;
}

/** An idempotency claim (and resource turn) held by a running handler. */
export interface HeldClaim {
  eventId: string;
  /** The id the claim is held under (the event id; replay-scoped for a replay's job). */
  claimId: string;
  token: string;
  /** The resource whose turn the handler holds (per-resource ordering), renewed with the claim. */
  resourceKey: string | undefined;
  /** When BullMQ last renewed the job's lock (or when the claim was taken). */
  renewedAt: number;
  /** Aborts the handler's signal. */
  abort: (reason: Error) => void;
}

/** What the steps share: the worker's parts they use. */
export interface StepDeps {
  /** The idempotency ledger of the process's queue path (stock or fast). */
  ledger: EventLedger;
  logger: Logger;
  metrics: WorkerMetrics;
  settings: ProcessorSettings;
  /**
   * Aborted when the shutdown grace period ends. A job starting after that is aborted at once;
   * the worker aborts the running ones through their claims ({@link shutdownAbortError}).
   */
  shutdown: AbortSignal;
  /** Claims of running handlers by job id, so the worker can renew them and abort handlers. */
  claims: Map<string, HeldClaim>;
  /** The handler map's ordering (SPEC §6): `per-resource` takes turns, `none` does not. */
  ordering: Ordering;
  /** Where each attempt's record goes when the event history is on. */
  history: AttemptHistory | undefined;
  /** This worker's name, in the history's attempt records. */
  workerName: string;
}

/** Takes the worker's attempt records for the event history (written off the hot path). */
export interface AttemptHistory {
  /** Records an attempt at job `jobId`. */
  record(record: AttemptRecord, jobId: string): void;
}

/** One attempt at one job: what every step reads, and its log line's fields. */
export class Attempt {
  readonly job: Job<EventJobData, void, string>;
  readonly jobId: string;
  /** BullMQ's lock token of this attempt (the claim's owner). */
  readonly token: string;
  /** 1-based attempt number. */
  readonly number: number;
  eventId: string;
  /**
   * The id the event's idempotency record is kept under: the event id, or for a replay's job
   * the event id scoped by the replay (a replay runs an event again, once per replay command).
   */
  claimId: string;
  type: string;
  /** Epoch ms the attempt started (history records). */
  readonly startedAt = Date.now();
  /** The resource the event is about, once known (`ctx.resourceKey`). */
  resourceKey: string | undefined = undefined;
  /** The resource turn this attempt holds, once taken. */
  turn: ResourceTurn | undefined = undefined;
  /** How the attempt ended: the outcome its last log line named. */
  outcome: AttemptOutcome | undefined = undefined;
  /** The ids of the attempt's span, when tracing: on its log lines and its handler's logger. */
  traced: TraceLogFields | undefined = undefined;
  /** The context holding the attempt's span, when tracing: active while the handler runs. */
  traceContext: Context | undefined = undefined;
  readonly #started = performance.now();

  constructor(job: Job<EventJobData, void, string>, token: string, eventId: string) {
    this.job = job;
    this.jobId = job.id ?? '';
    this.token = token;
    this.number = job.attemptsMade + 1;
    this.eventId = eventId;
    this.claimId = eventId;
    this.type = job.name;
  }

  /**
   * Runs `handler` with the attempt's span active across its awaits, so that what it traces
   * nests under the attempt; only the handler: the steps around it pass no context on, and the
   * async context is on only while some handler runs (`OnDemandContextManager`).
   */
  inTrace(handler: () => Promise<void>): Promise<void> {
    if (this.traceContext === undefined) return handler();
    return context.with(this.traceContext, handler);
  }

  /**
   * The fields of this attempt's log line, written out: an object spread costs more here. Every
   * way an attempt ends writes one, so it also records the attempt's {@link Attempt.outcome}.
   */
  line(outcome: AttemptOutcome) {
    this.outcome = outcome;
    return {
      eventId: this.eventId,
      type: this.type,
      attempt: this.number,
      durationMs: Math.round(performance.now() - this.#started),
      outcome,
      trace_id: this.traced?.trace_id,
      span_id: this.traced?.span_id,
    };
  }
}

/**
 * One attempt's abort switch. The `AbortController` behind `ctx.signal` (costly to create in
 * Node, and most handlers never look at it) is only made when the handler reads the signal.
 */
export class AttemptAbort {
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
export class AttemptContext implements HandlerContext {
  readonly eventId: string;
  readonly attempt: number;
  readonly resourceKey: string | undefined;
  readonly #type: string;
  readonly #traced: TraceLogFields | undefined;
  readonly #abort: AttemptAbort;
  readonly #parent: Logger;
  #logger: Logger | undefined = undefined;

  constructor(attempt: Attempt, abort: AttemptAbort, parent: Logger) {
    this.eventId = attempt.eventId;
    this.attempt = attempt.number;
    this.resourceKey = attempt.resourceKey;
    this.#type = attempt.type;
    this.#traced = attempt.traced;
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
      ...this.#traced,
    });
    return this.#logger;
  }
}

/**
 * Writes how the attempt ended to the event history (when it is on): the outcomes that end an
 * attempt, not the waits (a busy claim or resource, shutdown), which spend none.
 */
export function recordAttempt(
  attempt: Attempt,
  deps: StepDeps,
  outcome: AttemptRecordOutcome,
  error?: Error,
): void {
  if (deps.history === undefined) return;
  const record: AttemptRecord = {
    kind: 'attempt',
    eventId: attempt.eventId,
    type: attempt.type,
    attempt: attempt.number,
    startedAt: attempt.startedAt,
    endedAt: Date.now(),
    worker: deps.workerName,
    outcome,
  };
  if (error !== undefined) {
    record.error = error.message;
    record.errorType = error.name;
  }
  const replay = attempt.job.data?.replay;
  if (typeof replay === 'string') record.replayId = replay;
  deps.history.record(record, attempt.jobId);
}

/** Gives back a claim the job's fetch took, logging (not throwing) when Redis refuses. */
export async function giveBackQuietly(attempt: Attempt, deps: StepDeps): Promise<void> {
  try {
    await deps.ledger.giveBack(attempt.claimId, attempt.jobId, attempt.token);
  } catch (error) {
    // The claim then expires with its TTL (one lock duration).
    deps.logger.warn({ eventId: attempt.eventId, err: toError(error) }, 'Could not release claim');
  }
}

/**
 * Releases a claim and ends a turn that were taken for `token`, logging (not throwing) when
 * Redis refuses: they then expire with their TTL (one lock duration), and the retry waits that
 * long.
 */
export async function releaseQuietly(
  deps: StepDeps,
  eventId: string,
  token: string,
  turn: ResourceTurn | undefined,
): Promise<void> {
  try {
    await deps.ledger.release(eventId, token);
    if (turn !== undefined) await deps.ledger.endTurn(turn, token);
  } catch (error) {
    deps.logger.warn({ eventId, err: toError(error) }, 'Could not release claim');
  }
}

export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value)));
}
