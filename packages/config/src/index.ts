export {
  type CliConfig,
  type CommonConfig,
  type DashboardConfig,
  type FastPathConfig,
  type IngestConfig,
  type JobConfig,
  LOG_LEVELS,
  type LogLevel,
  loadCliConfig,
  loadDashboardConfig,
  loadIngestConfig,
  loadWorkerConfig,
  QUEUE_FAST_PATH_MODES,
  type QueueFastPathMode,
  type WorkerConfig,
} from './config.js';
export { loadOrExit } from './exit.js';
export { ConfigError, type Env, type HostPort } from './fields.js';
export {
  ADMIN_TOKEN_FILE,
  ARCHIVE_URL_FILE,
  DEV_SECRET_FILE,
  findRepoRoot,
  localStateDir,
} from './local-state.js';
export { databaseLocation } from './location.js';
