export { type LineFields, type LineLevel, writeLine } from './line.js';
export {
  type CreateLoggerOptions,
  createLogger,
  flushAndExit,
  isoClock,
  type Logger,
} from './logger.js';
export { Counter, createRegistry, Gauge, Histogram, type Registry } from './metrics.js';
export { metricsListener } from './metrics-listener.js';
