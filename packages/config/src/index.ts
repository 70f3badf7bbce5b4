export {
  type CliConfig,
  type CommonConfig,
  type DashboardConfig,
  INGEST_APP_VARIABLES,
  type IngestAppConfig,
  type IngestConfig,
  type JobConfig,
  LOG_LEVELS,
  type LogLevel,
  loadCliConfig,
  loadDashboardConfig,
  loadIngestAppConfig,
  loadIngestConfig,
  loadWorkerConfig,
  WORKER_VARIABLES,
  type WorkerConfig,
} from './config.js';
export { loadOrExit } from './exit.js';
export { ConfigError, type Env, type HostPort } from './fields.js';
export { ADMIN_TOKEN_FILE, DEV_SECRET_FILE, findRepoRoot, localStateDir } from './local-state.js';
export {
  type CommonSettings,
  type IngestSettings,
  loadIngestSettings,
  loadWorkerSettings,
  type WorkerEnvSettings,
} from './settings.js';
