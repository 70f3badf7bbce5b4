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
export {
  contextFromCarrier,
  spanContextFromCarrier,
  type TraceCarrier,
  type TraceLogFields,
  traceCarrier,
  traceLogFields,
} from './trace-context.js';
export {
  type StartTracingOptions,
  startTracing,
  type Tracing,
  tracingRequested,
} from './tracing.js';
export { TurnBufferedStdout } from './turn-buffered-stdout.js';
