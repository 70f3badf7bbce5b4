// The worker's public surface: run it inside your own process.
export { ConfigError, type WorkerEnvSettings } from '@groq-webhooks/config';
export {
  MetricsPortError,
  type RunningWorker,
  type StartWorkerOptions,
  startWorker,
} from './start-worker.js';
export {
  HandlerAbortedError,
  HandlerTimeoutError,
  ShutdownAbortError,
} from './steps/attempt.js';
