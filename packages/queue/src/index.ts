// The BullMQ pieces the worker app builds on, re-exported so BullMQ has one home.
export {
  DelayedError,
  Job,
  UnrecoverableError,
  Worker,
  type WorkerOptions,
} from 'bullmq';
export {
  type AttemptFailure,
  type BulkProgress,
  type BulkResult,
  type CountedState,
  type EventDetail,
  type FailedEventSummary,
  FailedEvents,
  type FailedEventsDeps,
  type FailedList,
  type FailedOperationOutcome,
  type QueueStats,
  type StateCounts,
} from './admin.js';
export type { BatchEvent, BatchState, BatchWriter } from './batch-writer.js';
export {
  type ConnectionRole,
  closeRedis,
  createRedis,
  isRedisReady,
  type RedisClient,
  type RedisSettings,
  usesCluster,
  waitForRedis,
} from './connection.js';
export {
  type ClaimResult,
  type EventLedger,
  IdempotencyStore,
} from './idempotency.js';
export {
  BACKOFF_TYPE,
  backoffDelay,
} from './job-options.js';
export {
  eventIdFromJobId,
  idempotencyKey,
  jobIdFor,
  type QueueSettings,
  type QueueShard,
  queueShards,
  shardOf,
} from './naming.js';
export {
  type EnqueueOutcome,
  EventProducer,
  type ProducerDeps,
  QueueUnavailableError,
} from './producer.js';
export {
  chooseQueuePath,
  FastPathUnavailableError,
  type QueuePath,
  type QueuePathChoice,
  queuePathOrExit,
  STOCK_PATH,
} from './queue-path.js';
export {
  type EventJobData,
  type EventQueue,
  openQueue,
  type QueueHandleSettings,
} from './queues.js';
export { storedTrace } from './stored-trace.js';
