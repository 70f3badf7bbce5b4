export {
  ARCHIVER_GROUP,
  type ArchiveDeferral,
  Archiver,
  type ArchiverDeps,
  type ArchiverStats,
  DEFAULT_DEFERRAL,
  type HistoryBacklog,
} from './archiver.js';
export {
  EVENT_STATUSES,
  type EventFilters,
  type EventStatus,
  FilterError,
  filtersJson,
  parseFilters,
  type RawFilters,
} from './filters.js';
export { MIGRATIONS, type Migration, migrate } from './migrations.js';
export {
  newReplayId,
  REPLAY_CHUNK,
  type ReplayDeps,
  type ReplayOptions,
  type ReplayResult,
  replayEvents,
} from './replay.js';
export {
  type ArchiverSnapshot,
  archiverSnapshot,
  createHistoryService,
  type HistoryPoolOptions,
  type HistoryService,
  type HistoryServiceDeps,
  openHistoryPool,
  registerHistoryMetrics,
} from './service.js';
export {
  type AttemptRow,
  type DeliveryRow,
  type EventCounts,
  type EventHistory,
  type EventList,
  type EventSummary,
  HistoryStore,
  type ReplayCandidate,
  type ReplayCursor,
  type StreamEntry,
} from './store.js';
