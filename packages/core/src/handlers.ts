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
  /**
   * The resource the event is about (`data.id` of the `resource.*` types), or undefined. With
   * per-resource ordering, no other event of this resource runs anywhere meanwhile.
   */
  resourceKey: string | undefined;
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

/** How events about one resource are run (SPEC §6). */
export const ORDERINGS = ['per-resource', 'none'] as const;
export type Ordering = (typeof ORDERINGS)[number];

/** Options of a handler map. */
export interface HandlerOptions {
  /**
   * `per-resource` (default): events about one resource run one at a time across every worker,
   * and one older than the newest applied for its resource (or than its deletion) completes as
   * stale without running. `none`: every event runs as it comes.
   */
  ordering?: Ordering;
}

/** Where a handler map made by {@link defineHandlers} keeps its options (not a handler). */
export const HANDLER_OPTIONS: unique symbol = Symbol.for('groq-webhooks.handler-options');

/**
 * Types a handler map, and records its options. A plain object of functions works the same,
 * with the default options.
 * @example export default defineHandlers({ 'resource.created': async (event, ctx) => {}, ... });
 */
export function defineHandlers(handlers: HandlerMap, options: HandlerOptions = {}): HandlerMap {
  if (options.ordering !== undefined && !ORDERINGS.includes(options.ordering)) {
    throw new TypeError(`ordering must be one of ${ORDERINGS.join(', ')}`);
  }
  Object.defineProperty(handlers, HANDLER_OPTIONS, { value: { ...options }, enumerable: false });
  return handlers;
}

/** The options a handler map was defined with (defaults for a plain object). */
export function handlerOptions(handlers: HandlerMap): Required<HandlerOptions> {
  const given = (handlers as { [HANDLER_OPTIONS]?: HandlerOptions })[HANDLER_OPTIONS];
  return { ordering: given?.ordering ?? 'per-resource' };
}

/** Throw from a handler to fail the event at once, without further attempts. */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
}
