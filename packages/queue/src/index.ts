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
  DEFAULT_MARKER_SETTINGS,
  DONE_MARKER_LUA,
  MAX_LOAD,
  type MarkerLayout,
  type MarkerSettings,
  withSimulatedClock,
} from './done-markers.js';
export { groupBytes, type RememberedEvents, rememberedEvents } from './done-stats.js';
export {
  DoneSweeper,
  type DoneSweeperOptions,
  SWEEP_BUCKETS_PER_STEP,
  type SweepStep,
} from './done-sweeper.js';
export {
  ATTEMPT_OUTCOMES,
  type AttemptRecord,
  type AttemptRecordOutcome,
  DELIVERY_OUTCOMES,
  type DeliveryOutcome,
  type DeliveryRecord,
  decodeHistoryRecord,
  type EncodedHistoryRecord,
  encodeHistoryRecord,
  HISTORY_FORMAT_VERSION,
  HISTORY_STREAM_SUFFIX,
  type HistoryRecord,
  HistoryWriter,
  historyShardOf,
  historyStreamKey,
  historyStreamKeys,
  MalformedHistoryRecord,
  type ReplayRecord,
} from './history.js';
export {
  type ClaimResult,
  type EndedTurn,
  type EventLedger,
  IdempotencyStore,
  type LedgerOptions,
} from './idempotency.js';
export {
  BACKOFF_TYPE,
  backoffDelay,
  COMPLETED_RETENTION,
} from './job-options.js';
export {
  MARKER_RECORD_KEY,
  type MarkerRecord,
  openMarkerSettings,
  ROLLOUT_WINDOW_SECONDS,
  readMarkerRecord,
} from './marker-record.js';
export {
  clusterSlot,
  DONE_GROUP,
  doneGroupKey,
  doneGroupOfSlot,
  eventIdFromJobId,
  idempotencyKey,
  jobIdFor,
  keySlot,
  type QueueSettings,
  type QueueShard,
  queueShards,
  REPLAY_JOB_ID_PREFIX,
  replayJobIdFor,
  shardOf,
} from './naming.js';
export type { ResourceTurn, TurnResult } from './ordering.js';
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
  queuePathFor,
  queuePathOrExit,
  STOCK_PATH,
} from './queue-path.js';
export {
  type EventJobData,
  type EventQueue,
  jobTurn,
  openQueue,
  openQueues,
  type QueueHandleSettings,
} from './queues.js';
export { MAX_RENDER_DEPTH, nestedDeeperThan, tooDeepProblem } from './render-depth.js';
export { storedTrace } from './stored-trace.js';
