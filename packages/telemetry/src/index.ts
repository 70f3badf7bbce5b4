export { type CreateLoggerOptions, createLogger, type Logger, REDACTED_PATHS } from './logger.js';
export { Counter, createRegistry, Gauge, Histogram, type Registry } from './metrics.js';
