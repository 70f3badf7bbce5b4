import { type Logger, type LoggerOptions, pino } from 'pino';
import { TurnBufferedStdout } from './turn-buffered-stdout.js';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever they appear in a log line: secrets, signatures and
 * authorization headers never reach a log.
 */
export const REDACTED_PATHS = [
  'secret',
  'secrets',
  'token',
  'adminToken',
  'signature',
  'password',
  'authorization',
  '*.secret',
  '*.secrets',
  '*.token',
  '*.adminToken',
  '*.signature',
  '*.password',
  '*.authorization',
  'headers.authorization',
  'headers.cookie',
  'headers["x-groq-signature"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-groq-signature"]',
  'config.secrets',
  'config.adminToken',
] as const;

/** Options for {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Process kind, written as `service` on every line. */
  service: string;
  /** pino level. Default `info`. */
  level?: string;
  /**
   * Where lines go. Default: stdout, the lines of one event-loop turn written together at the
   * end of that turn ({@link TurnBufferedStdout}); `logger.flush(cb)` and process exit write
   * what is left.
   */
  destination?: pino.DestinationStream;
}

/** A pino JSON logger with the project's redaction rules. */
export function createLogger(options: CreateLoggerOptions): Logger {
  const settings: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: options.service, pid: process.pid },
    // pino's `*.key` wildcards walk every key of every line (docs/performance.md); the same censoring
    // is done by `censorNested` below at a fraction of that, and pino keeps the fixed paths.
    redact: { paths: REDACTED_PATHS.filter((path) => !path.startsWith('*.')), censor: CENSOR },
    timestamp: cachedIsoTime(),
    formatters: {
      level: (label) => ({ level: label }),
      log: censorNested,
      bindings: censorNested,
    },
  };
  const logger = pino(settings, options.destination ?? new TurnBufferedStdout(1));
  return censorChildBindings(logger);
}

/** pino runs the bindings formatter for the root logger only: children get theirs censored here. */
function censorChildBindings(logger: Logger): Logger {
  // pino's generic custom-level signature does not survive wrapping; the project uses none.
  const child = logger.child.bind(logger) as unknown as (
    bindings: pino.Bindings,
    options?: pino.ChildLoggerOptions,
  ) => Logger;
  const censored = (bindings: pino.Bindings, options?: pino.ChildLoggerOptions): Logger =>
    censorChildBindings(child(censorNested(bindings), options));
  logger.child = censored as unknown as Logger['child'];
  return logger;
}

const CENSOR = '[redacted]';

/** Keys censored one level down in any object of a line: what the `*.key` paths say. */
const NESTED_KEYS = REDACTED_PATHS.filter((path) => path.startsWith('*.')).map((path) =>
  path.slice(2),
);

/**
 * Censors {@link NESTED_KEYS} in the objects a line holds, copying only what it changes (the
 * caller's objects are never touched; an Error stays an Error with its message and stack).
 */
function censorNested(line: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in line) {
    const value = line[key];
    if (value === null || typeof value !== 'object') continue;
    let censored: Record<string, unknown> | undefined;
    for (const name of NESTED_KEYS) {
      if (!Object.hasOwn(value, name)) continue;
      censored ??= Object.create(
        Object.getPrototypeOf(value),
        Object.getOwnPropertyDescriptors(value),
      ) as Record<string, unknown>;
      Object.defineProperty(censored, name, { value: CENSOR, enumerable: true, writable: true });
    }
    if (censored === undefined) continue;
    copy ??= { ...line };
    copy[key] = censored;
  }
  return copy ?? line;
}

/** pino's `isoTime`, but formatted once per millisecond rather than once per line. */
function cachedIsoTime(): () => string {
  const iso = isoClock();
  return () => `,"time":"${iso()}"`;
}

/**
 * A clock that answers the ISO-8601 time of `now()`, formatting it once per millisecond rather
 * than on every call (for a log line or a timestamp per request).
 */
export function isoClock(now: () => number = Date.now): () => string {
  let lastMillis = Number.NaN;
  let lastTime = '';
  return () => {
    const millis = now();
    if (millis !== lastMillis) {
      lastMillis = millis;
      lastTime = new Date(millis).toISOString();
    }
    return lastTime;
  };
}

/**
 * Ends the process once the logger's last lines are out, or after a second if flushing hangs:
 * what shutdown logged must not be lost, and a stuck destination must not keep the process up.
 */
export function flushAndExit(logger: Logger, code: number): void {
  setTimeout(() => process.exit(code), 1000).unref();
  logger.flush(() => process.exit(code));
}
