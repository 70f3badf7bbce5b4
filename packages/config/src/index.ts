export {
  type CliConfig,
  type CommonConfig,
  type DashboardConfig,
  type HttpLimitsConfig,
  type IngestConfig,
  ingestConfigWarnings,
  type JobConfig,
  LOG_LEVELS,
  type LogLevel,
  loadCliConfig,
  loadDashboardConfig,
  loadIngestConfig,
  loadWorkerConfig,
  SECRET_MIN_LENGTH,
  SECRET_RECOMMENDED_LENGTH,
  type WorkerConfig,
} from './config.js';
export { loadOrExit } from './exit.js';
export { ConfigError, type Env, type HostPort } from './fields.js';
export { ADMIN_TOKEN_FILE, DEV_SECRET_FILE, findRepoRoot, localStateDir } from './local-state.js';
export { httpServerOptions } from './server-options.js';
