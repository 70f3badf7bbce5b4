import type { EventType, GroqEvent } from './events.js';

type LogFn = {
  (obj: object, msg?: string): void;
  (msg: string): void;
};

/** The logger handlers get: pino-compatible, already bound to the event's id and type. */
export interface EventLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

/** What a handler gets besides the event. */
export interface HandlerContext {
  /** The event id: use it to make your own writes idempotent. */
  eventId: string;
  /** 1-based number of this attempt. */
  attempt: number;
  /** Aborted at the handler timeout, when the job's lock is lost, or on shutdown. */
  signal: AbortSignal;
  /** Child logger bound to `eventId` and `type`. */
  logger: EventLogger;
}

/** A handler for one known event type. */
export type Handler<T extends EventType> = (
  event: GroqEvent<T>,
  ctx: HandlerContext,
) => Promise<void> | void;

/** One handler for every known event type; a missing one is a compile error. */
export type HandlerMap = { [T in EventType]: Handler<T> };

/**
 * Types a handler map. It only adds types: a plain object of functions works the same.
 * @example export default defineHandlers({ 'resource.created': async (event, ctx) => {}, ... });
 */
export function defineHandlers(handlers: HandlerMap): HandlerMap {
  return handlers;
}

/** Throw from a handler to fail the event at once, without further attempts. */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
}
