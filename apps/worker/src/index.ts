export {
  ConfigError,
  type WorkerEnvSettings,
} from '@groq-webhooks/config';
export { MAX_STALLED_COUNT } from './bullmq-options.js';
export { exampleHandlers } from './example-handlers.js';
export { HandlersModuleError, handlerMapProblem, loadHandlers } from './handlers-module.js';
export {
  createWorkerMetrics,
  metricsListener,
  QUEUE_STATES,
  type QueueState,
  type WorkerMetrics,
} from './metrics.js';
export {
  MetricsPortError,
  type RunningWorker,
  type StartWorkerOptions,
  startWorker,
} from './start-worker.js';
export {
  type AttemptOutcome,
  HandlerAbortedError,
  HandlerTimeoutError,
  ShutdownAbortError,
} from './steps/attempt.js';
export {
  createWorker,
  DEFAULT_REQUEUE_DELAY_MS,
  type EventWorker,
  type WorkerDeps,
  type WorkerSettings,
} from './worker.js';
