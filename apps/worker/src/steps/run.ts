import type { GroqEvent, HandlerContext, HandlerMap } from '@groq-webhooks/core';
import {
  type Attempt,
  AttemptAbort,
  AttemptContext,
  HandlerTimeoutError,
  type StepDeps,
  shutdownAbortError,
  toError,
} from './attempt.js';
import type { ValidEvent } from './validate.js';

/** How long an aborted handler may take to settle before the attempt ends without it. */
const ABORT_SETTLE_MS = 250;

type AnyHandler = (event: GroqEvent, ctx: HandlerContext) => Promise<void> | void;

/** How a handler's run ended. */
export interface RunResult {
  /** Why the attempt failed (the abort's reason, or what the handler threw); undefined: it succeeded. */
  readonly error: Error | undefined;
  /** The handler resolved: its effect happened, even if the attempt was aborted meanwhile. */
  readonly succeeded: boolean;
  /** The handler's run has ended; false when it ignored its abort and still runs. */
  readonly settled: boolean;
  /** The handler's run, for settling it later when it outlives the attempt. */
  readonly run: Promise<void>;
}

/**
 * Step 3: runs the event's handler under the attempt's abort: `HANDLER_TIMEOUT_MS`, a lost job
 * lock or claim (the worker aborts it through the held claim), or the end of the shutdown grace
 * period. Never throws: how it ended is the result. A handler that honours its signal gets a
 * moment to unwind before the result is reported.
 */
export async function runHandler(
  attempt: Attempt,
  valid: ValidEvent,
  handlers: HandlerMap,
  deps: StepDeps,
): Promise<RunResult> {
  const abort = new AttemptAbort();
  deps.claims.set(attempt.jobId, {
    eventId: attempt.eventId,
    claimId: attempt.claimId,
    token: attempt.token,
    resourceKey: attempt.turn?.key,
    renewedAt: Date.now(),
    abort: (reason) => abort.abort(reason),
  });
  const timeoutMs = deps.settings.handlerTimeoutMs;
  const timer = setTimeout(
    () => abort.abort(new HandlerTimeoutError(`Handler timed out after ${timeoutMs} ms`)),
    timeoutMs,
  );
  if (deps.shutdown.aborted) abort.abort(shutdownAbortError());
  const ctx = new AttemptContext(attempt, abort, deps.logger);
  // The map's type ties each handler to its own payload; here the type is only known at run time.
  const handler = handlers[valid.type] as unknown as AnyHandler;
  let settled = false;
  let succeeded = false;
  const run = attempt.inTrace(async () => {
    try {
      await handler(valid.event, ctx);
      succeeded = true;
    } finally {
      settled = true;
    }
  });
  const started = performance.now();
  let error: Error | undefined;
  try {
    await abort.race(run);
  } catch (thrown) {
    error = abort.reason ?? toError(thrown);
  }
  deps.metrics.handlerDuration.observe({ type: valid.type }, (performance.now() - started) / 1000);
  clearTimeout(timer);
  if (error !== undefined && !settled) {
    await Promise.race([run.catch(() => {}), delay(ABORT_SETTLE_MS)]);
  }
  deps.claims.delete(attempt.jobId);
  return { error, succeeded, settled, run };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
