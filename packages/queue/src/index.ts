// The BullMQ pieces the worker app builds on, re-exported so BullMQ has one home.
export {
  DelayedError,
  Job,
  type Processor,
  UnrecoverableError,
  Worker,
  type WorkerOptions,
} from 'bullmq';
export {
  type AttemptFailure,
  type BulkProgress,
  type BulkResult,
  COUNTED_STATES,
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
export {
  type ConnectionRole,
  closeRedis,
  createRedis,
  isRedisReady,
  type RedisClient,
  type RedisSettings,
  waitForRedis,
} from './connection.js';
export { claimedAtFetch, FINISH_JOB, JobFinisher } from './finish-script.js';
export { type ClaimResult, DONE, IdempotencyStore, retryDoneMark } from './idempotency.js';
export {
  BACKOFF_TYPE,
  backoffDelay,
  COMPLETED_RETENTION,
  FAILED_RETENTION_SECONDS,
  jobOptions,
  MAX_BACKOFF_MS,
} from './job-options.js';
export {
  clusterSlot,
  eventIdFromJobId,
  idempotencyKey,
  jobIdFor,
  type QueueSettings,
  type QueueShard,
  queueShards,
  shardOf,
} from './naming.js';
export {
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_IN_FLIGHT,
  type EnqueueOutcome,
  EventProducer,
  type ProducerDeps,
  QueueUnavailableError,
} from './producer.js';
export {
  type EventJobData,
  type EventQueue,
  openQueue,
  openQueues,
  type QueueHandleSettings,
} from './queues.js';
export { MAX_RENDER_DEPTH, nestedDeeperThan, tooDeepProblem } from './render-depth.js';
