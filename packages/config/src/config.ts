import {
  type Env,
  type Field,
  type HostPort,
  hostPorts,
  int,
  oneOf,
  optionalText,
  postgresUrl,
  redisUrl,
  secrets,
  text,
  token,
} from './fields.js';

/** `QUEUE_FAST_PATH`: `auto` uses the fast path when it can, `on` requires it, `off` never. */
export const QUEUE_FAST_PATH_MODES = ['auto', 'on', 'off'] as const;
export type QueueFastPathMode = (typeof QUEUE_FAST_PATH_MODES)[number];

/** Log levels pino knows. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

type Schema = Record<string, Field<unknown>>;
/** Maps environment variable names to parsed fields, into a frozen object keyed like `keys`. */
function parse<S extends Schema, const K extends Record<keyof S, string>>(
  env: Env,
  schema: S,
  keys: K,
): { readonly [P in keyof S as K[P]]: ReturnType<S[P]> } {
  const out: Record<string, unknown> = {};
  for (const variable of Object.keys(schema)) {
    const field = schema[variable];
    if (field) out[keys[variable as keyof S]] = field(env, variable);
  }
  return Object.freeze(out) as never;
}

const PORT = { min: 1, max: 65535 };
/** Queue names become part of Redis keys: keep them to a safe alphabet. */
const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;

const common = {
  schema: {
    REDIS_URL: redisUrl('redis://127.0.0.1:6379'),
    REDIS_CLUSTER_NODES: hostPorts(),
    QUEUE_NAME: text({
      default: 'groq-events',
      pattern: QUEUE_NAME_PATTERN,
      expected: 'letters, digits, _ . - (1-100)',
    }),
    QUEUE_PREFIX: text({
      default: '{groq}',
      pattern: /^[^\s:]{1,100}$/,
      expected: 'a prefix without spaces or colons',
    }),
    QUEUE_SHARDS: int({ default: 1, min: 1, max: 64 }),
    LOG_LEVEL: oneOf(LOG_LEVELS, 'info'),
    ARCHIVE_DATABASE_URL: postgresUrl(),
  },
  keys: {
    REDIS_URL: 'redisUrl',
    REDIS_CLUSTER_NODES: 'redisClusterNodes',
    QUEUE_NAME: 'queueName',
    QUEUE_PREFIX: 'queuePrefix',
    QUEUE_SHARDS: 'queueShards',
    LOG_LEVEL: 'logLevel',
    ARCHIVE_DATABASE_URL: 'archiveDatabaseUrl',
  },
} as const;

/** The hot-path processes (ingest, worker) choose between BullMQ's stock path and the fast one. */
const fastPath = {
  schema: { QUEUE_FAST_PATH: oneOf(QUEUE_FAST_PATH_MODES, 'auto') },
  keys: { QUEUE_FAST_PATH: 'queueFastPath' },
} as const;

const jobs = {
  schema: {
    JOB_ATTEMPTS: int({ default: 8, min: 1, max: 100 }),
    BACKOFF_BASE_MS: int({ default: 1000, min: 1, max: 3_600_000 }),
  },
  keys: { JOB_ATTEMPTS: 'jobAttempts', BACKOFF_BASE_MS: 'backoffBaseMs' },
} as const;

/** Settings every process shares: Redis, queue naming, logging. */
export interface CommonConfig {
  readonly redisUrl: string;
  readonly redisClusterNodes: readonly HostPort[] | undefined;
  readonly queueName: string;
  readonly queuePrefix: string;
  readonly queueShards: number;
  readonly logLevel: LogLevel;
  /** PostgreSQL URL of the event history; undefined: history off. */
  readonly archiveDatabaseUrl: string | undefined;
}

/** Attempt budget and backoff, set by the producer and honoured by the worker. */
export interface JobConfig {
  readonly jobAttempts: number;
  readonly backoffBaseMs: number;
}

/** How a hot-path process uses BullMQ (SPEC §8 `QUEUE_FAST_PATH`). */
export interface FastPathConfig {
  readonly queueFastPath: QueueFastPathMode;
}

/** Configuration of the ingest process. */
export interface IngestConfig extends CommonConfig, JobConfig, FastPathConfig {
  readonly secrets: readonly string[];
  readonly port: number;
  readonly host: string;
  readonly toleranceSeconds: number;
  readonly maxBodyBytes: number;
  readonly enqueueTimeoutMs: number;
}

/** Configuration of a worker process. */
export interface WorkerConfig extends CommonConfig, JobConfig, FastPathConfig {
  readonly concurrency: number;
  readonly handlerTimeoutMs: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly metricsPort: number;
  readonly idempotencyTtlSeconds: number;
  readonly handlersModule: string | undefined;
  readonly shutdownGraceMs: number;
  /** Days archived events are kept before the worker prunes them. */
  readonly archiveRetentionDays: number;
}

/** Configuration of the dashboard process. */
export interface DashboardConfig extends CommonConfig, JobConfig {
  readonly adminToken: string;
  readonly port: number;
  readonly host: string;
}

/** Configuration of the CLI (signing secret optional: only `trigger` needs one). */
export interface CliConfig extends CommonConfig, JobConfig {
  readonly secrets: readonly string[];
  readonly port: number;
}

/** Parses the ingest's environment. Throws {@link ConfigError} naming the first bad variable. */
export function loadIngestConfig(env: Env): IngestConfig {
  return parse(
    env,
    {
      ...common.schema,
      ...jobs.schema,
      ...fastPath.schema,
      GROQ_WEBHOOK_SECRET: secrets({ optional: false }),
      PORT: int({ default: 3000, ...PORT }),
      HOST: text({ default: '0.0.0.0' }),
      WEBHOOK_TOLERANCE_SECONDS: int({ default: 300, min: 1, max: 86_400 }),
      MAX_BODY_BYTES: int({ default: 1_048_576, min: 1, max: 104_857_600 }),
      ENQUEUE_TIMEOUT_MS: int({ default: 2000, min: 10, max: 60_000 }),
    },
    {
      ...common.keys,
      ...jobs.keys,
      ...fastPath.keys,
      GROQ_WEBHOOK_SECRET: 'secrets',
      PORT: 'port',
      HOST: 'host',
      WEBHOOK_TOLERANCE_SECONDS: 'toleranceSeconds',
      MAX_BODY_BYTES: 'maxBodyBytes',
      ENQUEUE_TIMEOUT_MS: 'enqueueTimeoutMs',
    },
  );
}

/** Parses a worker's environment. */
export function loadWorkerConfig(env: Env): WorkerConfig {
  return parse(
    env,
    {
      ...common.schema,
      ...jobs.schema,
      ...fastPath.schema,
      WORKER_CONCURRENCY: int({ default: 10, min: 1, max: 1000 }),
      HANDLER_TIMEOUT_MS: int({ default: 30_000, min: 1, max: 86_400_000 }),
      LOCK_DURATION_MS: int({ default: 15_000, min: 1000, max: 3_600_000 }),
      STALLED_INTERVAL_MS: int({ default: 15_000, min: 1000, max: 3_600_000 }),
      WORKER_METRICS_PORT: int({ default: 9464, min: 0, max: 65535 }),
      IDEMPOTENCY_TTL_SECONDS: int({ default: 604_800, min: 1, max: 31_536_000 }),
      HANDLERS_MODULE: optionalText(),
      SHUTDOWN_GRACE_MS: int({ default: 10_000, min: 0, max: 3_600_000 }),
      ARCHIVE_RETENTION_DAYS: int({ default: 30, min: 1, max: 36_500 }),
    },
    {
      ...common.keys,
      ...jobs.keys,
      ...fastPath.keys,
      WORKER_CONCURRENCY: 'concurrency',
      HANDLER_TIMEOUT_MS: 'handlerTimeoutMs',
      LOCK_DURATION_MS: 'lockDurationMs',
      STALLED_INTERVAL_MS: 'stalledIntervalMs',
      WORKER_METRICS_PORT: 'metricsPort',
      IDEMPOTENCY_TTL_SECONDS: 'idempotencyTtlSeconds',
      HANDLERS_MODULE: 'handlersModule',
      SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
      ARCHIVE_RETENTION_DAYS: 'archiveRetentionDays',
    },
  );
}

/** Parses the dashboard's environment; refuses to go on without `ADMIN_TOKEN`. */
export function loadDashboardConfig(env: Env): DashboardConfig {
  return parse(
    env,
    {
      ...common.schema,
      ...jobs.schema,
      ADMIN_TOKEN: token({ minLength: 16 }),
      DASHBOARD_PORT: int({ default: 3001, ...PORT }),
      DASHBOARD_HOST: text({ default: '127.0.0.1' }),
    },
    {
      ...common.keys,
      ...jobs.keys,
      ADMIN_TOKEN: 'adminToken',
      DASHBOARD_PORT: 'port',
      DASHBOARD_HOST: 'host',
    },
  );
}

/** Parses the CLI's environment. */
export function loadCliConfig(env: Env): CliConfig {
  return parse(
    env,
    {
      ...common.schema,
      ...jobs.schema,
      GROQ_WEBHOOK_SECRET: secrets({ optional: true }),
      PORT: int({ default: 3000, ...PORT }),
    },
    { ...common.keys, ...jobs.keys, GROQ_WEBHOOK_SECRET: 'secrets', PORT: 'port' },
  );
}
