import { type Logger, type LoggerOptions, pino } from 'pino';

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
  /** Where lines go. Default: stdout, asynchronously buffered. */
  destination?: pino.DestinationStream;
}

/** A pino JSON logger with the project's redaction rules. */
export function createLogger(options: CreateLoggerOptions): Logger {
  const settings: LoggerOptions = {
    level: options.level ?? 'info',
    base: { service: options.service, pid: process.pid },
    redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}
