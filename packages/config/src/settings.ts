import {
  INGEST_APP_VARIABLES,
  type IngestAppConfig,
  type LogLevel,
  loadIngestAppConfig,
  loadWorkerConfig,
  type QueueFastPathMode,
  WORKER_VARIABLES,
  type WorkerConfig,
} from './config.js';
import { ConfigError, type Env, type HostPort } from './fields.js';

// Settings given in code (`createIngest`, `startWorker`) are the environment variables under
// camelCase names. They are written back over the environment as the strings those variables
// would hold and parsed by the very loader the bins use: one validation, one set of defaults,
// one error per variable, whichever way a value arrives.

/** Settings every process shares. Each is its environment variable in camelCase; unset: from it. */
export interface CommonSettings {
  /** `REDIS_URL`; default `redis://127.0.0.1:6379`. */
  redisUrl?: string | undefined;
  /** `REDIS_CLUSTER_NODES`: `host:port,host:port` or a list; set, it switches to Redis Cluster. */
  redisClusterNodes?: string | readonly HostPort[] | undefined;
  /** `QUEUE_NAME`; default `groq-events`. */
  queueName?: string | undefined;
  /** `QUEUE_PREFIX`; default `{groq}` (a Redis Cluster hash tag). */
  queuePrefix?: string | undefined;
  /** `QUEUE_SHARDS`; default 1. */
  queueShards?: number | undefined;
  /** `LOG_LEVEL`; default `info`. */
  logLevel?: LogLevel | undefined;
  /** `JOB_ATTEMPTS`; default 8. */
  jobAttempts?: number | undefined;
  /** `BACKOFF_BASE_MS`; default 1000. */
  backoffBaseMs?: number | undefined;
  /** `COMPLETED_RETENTION_SECONDS`: completed jobs older than this are trimmed; default 3600. */
  completedRetentionSeconds?: number | undefined;
  /** `COMPLETED_RETENTION_COUNT`: most completed jobs kept; default 10000 (0 keeps none). */
  completedRetentionCount?: number | undefined;
  /** `ARCHIVE_DATABASE_URL`: PostgreSQL of the event history; unset, history is off. */
  archiveDatabaseUrl?: string | undefined;
}

/** Settings of `createIngest`: the ingest's variables but `PORT` and `HOST` (it listens nowhere). */
export interface IngestSettings extends CommonSettings {
  /** `GROQ_WEBHOOK_SECRET`: the receiver secret, or several (rotation). Required somewhere. */
  secrets?: string | readonly string[] | undefined;
  /** `WEBHOOK_TOLERANCE_SECONDS`; default 300. */
  webhookToleranceSeconds?: number | undefined;
  /** `MAX_BODY_BYTES`; default 1048576. */
  maxBodyBytes?: number | undefined;
  /** `ENQUEUE_TIMEOUT_MS`; default 2000. */
  enqueueTimeoutMs?: number | undefined;
  /** `MAX_INFLIGHT_BODY_BYTES`: body bytes held at once; past it, 503 `overloaded`; default 64 MiB. */
  maxInflightBodyBytes?: number | undefined;
  /** `MAX_JSON_DEPTH`: deeper bodies get 400 `invalid_payload`; default 64. */
  maxJsonDepth?: number | undefined;
  /** `QUEUE_FAST_PATH`: `auto` (default), `on` or `off`. */
  queueFastPath?: QueueFastPathMode | undefined;
}

/**
 * Settings of `startWorker`: a worker's variables but `HANDLERS_MODULE` and
 * `HANDLERS_LOAD_TIMEOUT_MS` (the handlers are given).
 */
export interface WorkerEnvSettings extends CommonSettings {
  /** `WORKER_CONCURRENCY`; default 10. */
  workerConcurrency?: number | undefined;
  /** `HANDLER_TIMEOUT_MS`; default 30000. */
  handlerTimeoutMs?: number | undefined;
  /** `LOCK_DURATION_MS`; default 15000. */
  lockDurationMs?: number | undefined;
  /** `STALLED_INTERVAL_MS`; default 15000. */
  stalledIntervalMs?: number | undefined;
  /** `WORKER_METRICS_PORT`; default 9464, 0 serves no metrics (read them from the handle). */
  workerMetricsPort?: number | undefined;
  /** `WORKER_METRICS_HOST`: the interface of the metrics port; default 127.0.0.1. */
  workerMetricsHost?: string | undefined;
  /** `IDEMPOTENCY_TTL_SECONDS`; default 604800. */
  idempotencyTtlSeconds?: number | undefined;
  /** `SHUTDOWN_GRACE_MS`: how long `close()` lets running handlers finish; default 10000. */
  shutdownGraceMs?: number | undefined;
  /** `QUEUE_FAST_PATH`: `auto` (default), `on` or `off`. */
  queueFastPath?: QueueFastPathMode | undefined;
  /** `ARCHIVE_RETENTION_DAYS`: days the worker keeps archived events; default 30. */
  archiveRetentionDays?: number | undefined;
}

/** `WORKER_CONCURRENCY` → `workerConcurrency`. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<S>;

/** Settings whose name is not their variable's in camelCase. */
const RENAMED = { secrets: 'GROQ_WEBHOOK_SECRET' } as const;

// Compile-time proof that the settings types above name exactly the loaders' variables.
type IngestSettingVariable = Exclude<(typeof INGEST_APP_VARIABLES)[number], 'GROQ_WEBHOOK_SECRET'>;
type WorkerSettingVariable = Exclude<(typeof WORKER_VARIABLES)[number], HandlersVariable>;
/** The worker variables about loading a handlers module, which `startWorker` does not do. */
type HandlersVariable = 'HANDLERS_MODULE' | 'HANDLERS_LOAD_TIMEOUT_MS';
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const ingestNamesMatch: Same<
  Exclude<keyof IngestSettings, keyof typeof RENAMED>,
  CamelCase<IngestSettingVariable>
> = true;
const workerNamesMatch: Same<keyof WorkerEnvSettings, CamelCase<WorkerSettingVariable>> = true;
void ingestNamesMatch;
void workerNamesMatch;

/** `workerConcurrency` → `WORKER_CONCURRENCY`. */
function variableOf(setting: string): string {
  const renamed = (RENAMED as Record<string, string>)[setting];
  return renamed ?? setting.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase();
}

/**
 * Parses settings given in code over `env` with `load`: each setting replaces its variable, the
 * others come from `env`. A {@link ConfigError} about a given setting names it and its variable.
 */
function loadWithSettings<T>(
  settings: object,
  variables: readonly string[],
  env: Env,
  load: (env: Env) => T,
): T {
  const known = new Set(variables);
  const given = new Map<string, string>();
  const merged: Record<string, string | undefined> = { ...env };
  for (const [setting, value] of Object.entries(settings)) {
    const variable = variableOf(setting);
    if (!known.has(variable)) throw new ConfigError(setting, 'is not a known setting');
    if (value === undefined) continue;
    given.set(variable, setting);
    merged[variable] = encode(value, variable, setting);
  }
  try {
    return load(merged);
  } catch (error) {
    const setting = error instanceof ConfigError ? given.get(error.variable) : undefined;
    if (error instanceof ConfigError && setting !== undefined) {
      throw new ConfigError(error.variable, error.problem, setting);
    }
    throw error;
  }
}

/** The string the variable would hold for a setting's value. */
function encode(value: unknown, variable: string, setting: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) {
    return value
      .map((item: unknown, index) => {
        if (typeof item === 'string') {
          if (item.includes(',')) {
            throw new ConfigError(variable, `entry ${index + 1} contains a comma`, setting);
          }
          return item;
        }
        if (isHostPort(item)) {
          return item.host.includes(':')
            ? `[${item.host}]:${item.port}`
            : `${item.host}:${item.port}`;
        }
        throw new ConfigError(variable, `entry ${index + 1} has an unsupported value`, setting);
      })
      .join(',');
  }
  throw new ConfigError(variable, `must be a string or a number, got ${typeof value}`, setting);
}

function isHostPort(value: unknown): value is HostPort {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as HostPort).host === 'string' &&
    typeof (value as HostPort).port === 'number'
  );
}

/**
 * The ingest app's configuration from settings given in code, the rest from `env`: the same
 * parsing as the `groq-webhooks-ingest` bin's. Throws {@link ConfigError}.
 */
export function loadIngestSettings(settings: IngestSettings, env: Env): IngestAppConfig {
  return loadWithSettings(settings, INGEST_APP_VARIABLES, env, loadIngestAppConfig);
}

/**
 * A worker's configuration from settings given in code, the rest from `env`: the same parsing as
 * the `groq-webhooks-worker` bin's. Throws {@link ConfigError}.
 */
export function loadWorkerSettings(settings: WorkerEnvSettings, env: Env): WorkerConfig {
  const variables = WORKER_VARIABLES.filter(
    (variable) => variable !== 'HANDLERS_MODULE' && variable !== 'HANDLERS_LOAD_TIMEOUT_MS',
  );
  return loadWithSettings(settings, variables, env, loadWorkerConfig);
}
