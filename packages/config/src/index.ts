export {
  type CliConfig,
  type CommonConfig,
  type DashboardConfig,
  type FastPathConfig,
  type HttpLimitsConfig,
  INGEST_APP_VARIABLES,
  type IngestAppConfig,
  type IngestConfig,
  ingestConfigWarnings,
  type JobConfig,
  LOG_LEVELS,
  type LogLevel,
  loadCliConfig,
  loadDashboardConfig,
  loadIngestAppConfig,
  loadIngestConfig,
  loadWorkerConfig,
  QUEUE_FAST_PATH_MODES,
  type QueueFastPathMode,
  SECRET_MIN_LENGTH,
  SECRET_RECOMMENDED_LENGTH,
  WORKER_VARIABLES,
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
export {
  SUPERVISOR_PID_VARIABLE,
  supervisorPid,
  whenParentGone,
  whenSupervisorGone,
} from './parent.js';
export { httpServerOptions } from './server-options.js';
export {
  type CommonSettings,
  type IngestSettings,
  loadIngestSettings,
  loadWorkerSettings,
  type WorkerEnvSettings,
} from './settings.js';
