import {
  ConfigError,
  type Env,
  type Field,
  type HostPort,
  hostPorts,
  int,
  oneOf,
  optionalInt,
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
    COMPLETED_RETENTION_SECONDS: int({ default: 3600, min: 1, max: 31_536_000 }),
    // 0: a completed job is deleted at once (the idempotency record still answers duplicates).
    // Unset: 10,000, or 0 when the event history keeps the events (ARCHIVE_DATABASE_URL).
    COMPLETED_RETENTION_COUNT: optionalInt({ min: 0, max: 10_000_000 }),
  },
  keys: {
    JOB_ATTEMPTS: 'jobAttempts',
    BACKOFF_BASE_MS: 'backoffBaseMs',
    COMPLETED_RETENTION_SECONDS: 'completedRetentionSeconds',
    COMPLETED_RETENTION_COUNT: 'completedRetentionCount',
  },
} as const;

/** Bounds of an HTTP server against slow and numerous clients (ingest and dashboard). */
const httpLimits = {
  schema: {
    HEADERS_TIMEOUT_MS: int({ default: 10_000, min: 100, max: 3_600_000 }),
    REQUEST_TIMEOUT_MS: int({ default: 30_000, min: 100, max: 3_600_000 }),
    MAX_CONNECTIONS: int({ default: 1024, min: 1, max: 1_000_000 }),
  },
  keys: {
    HEADERS_TIMEOUT_MS: 'headersTimeoutMs',
    REQUEST_TIMEOUT_MS: 'requestTimeoutMs',
    MAX_CONNECTIONS: 'maxConnections',
  },
} as const;

/** Webhook secrets shorter than this are refused at start. */
export const SECRET_MIN_LENGTH = 16;
/** Webhook secrets shorter than this draw a warning at start. */
export const SECRET_RECOMMENDED_LENGTH = 32;

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

/** Attempt budget, backoff and retention, set by the producer and honoured by the worker. */
export interface JobConfig {
  readonly jobAttempts: number;
  readonly backoffBaseMs: number;
  /** Completed jobs older than this are trimmed (default 3600). */
  readonly completedRetentionSeconds?: number;
  /**
   * At most this many completed jobs are kept (0 keeps none). Unset: 10,000, or none when the
   * event history holds every event's payload and outcome.
   */
  readonly completedRetentionCount?: number | undefined;
}

/** Limits of a process's HTTP server against slow and numerous clients. */
export interface HttpLimitsConfig {
  /** Time a client has to send the request headers. */
  readonly headersTimeoutMs: number;
  /** Time a client has to send the whole request, body included. */
  readonly requestTimeoutMs: number;
  /** Connections open at once; past it new ones are closed at once. */
  readonly maxConnections: number;
}

/** Limits of a process's HTTP server against slow and numerous clients. */
export interface HttpLimitsConfig {
  /** Time a client has to send the request headers. */
  readonly headersTimeoutMs: number;
  /** Time a client has to send the whole request, body included. */
  readonly requestTimeoutMs: number;
  /** Connections open at once; past it new ones are closed at once. */
  readonly maxConnections: number;
}

/** How a hot-path process uses BullMQ (SPEC §8 `QUEUE_FAST_PATH`). */
export interface FastPathConfig {
  readonly queueFastPath: QueueFastPathMode;
}

/** Configuration of the webhook receiving part of the ingest (the app `createIngest` builds). */
export interface IngestAppConfig extends CommonConfig, JobConfig, FastPathConfig {
  readonly secrets: readonly string[];
  readonly toleranceSeconds: number;
  readonly maxBodyBytes: number;
  readonly enqueueTimeoutMs: number;
  /** Request-body bytes held at once over all requests; past it new requests get a 503. */
  readonly maxInflightBodyBytes: number;
  /** Deepest JSON nesting accepted in a body. */
  readonly maxJsonDepth: number;
}

/** Configuration of the ingest process: its app, where it listens, and its server's limits. */
export interface IngestConfig extends IngestAppConfig, HttpLimitsConfig {
  readonly port: number;
  readonly host: string;
  /** Separate port for `/metrics` (then not served on `port`); undefined: on `port`. */
  readonly metricsPort: number | undefined;
  /** Interface of the separate metrics port. */
  readonly metricsHost: string;
}

/** Configuration of a worker process. */
export interface WorkerConfig extends CommonConfig, JobConfig, FastPathConfig {
  readonly concurrency: number;
  readonly handlerTimeoutMs: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly metricsPort: number;
  /** Interface the metrics port listens on (default loopback only). */
  readonly metricsHost: string;
  readonly idempotencyTtlSeconds: number;
  readonly handlersModule: string | undefined;
  /** Past this, a handler module still loading stops the worker with one line. */
  readonly handlersLoadTimeoutMs: number;
  readonly shutdownGraceMs: number;
  /** Days archived events are kept before the worker prunes them. */
  readonly archiveRetentionDays: number;
}

/** Configuration of the dashboard process. */
export interface DashboardConfig extends CommonConfig, JobConfig, HttpLimitsConfig {
  readonly adminToken: string;
  readonly port: number;
  readonly host: string;
}

/** Configuration of the CLI (signing secret optional: only `trigger` needs one). */
export interface CliConfig extends CommonConfig, JobConfig {
  readonly secrets: readonly string[];
  readonly port: number;
}

/** The ingest app's variables: what `createIngest` takes as settings (PORT and HOST are not). */
const ingestApp = {
  schema: {
    ...common.schema,
    ...jobs.schema,
    ...fastPath.schema,
    GROQ_WEBHOOK_SECRET: secrets({ optional: false, minLength: SECRET_MIN_LENGTH }),
    WEBHOOK_TOLERANCE_SECONDS: int({ default: 300, min: 1, max: 86_400 }),
    MAX_BODY_BYTES: int({ default: 1_048_576, min: 1, max: 104_857_600 }),
    ENQUEUE_TIMEOUT_MS: int({ default: 2000, min: 10, max: 60_000 }),
    MAX_INFLIGHT_BODY_BYTES: int({ default: 67_108_864, min: 1, max: 17_179_869_184 }),
    // Past about a thousand levels, serialising an event (logs, dashboard) overflows the stack.
    MAX_JSON_DEPTH: int({ default: 64, min: 2, max: 1000 }),
  },
  keys: {
    ...common.keys,
    ...jobs.keys,
    ...fastPath.keys,
    GROQ_WEBHOOK_SECRET: 'secrets',
    WEBHOOK_TOLERANCE_SECONDS: 'toleranceSeconds',
    MAX_BODY_BYTES: 'maxBodyBytes',
    ENQUEUE_TIMEOUT_MS: 'enqueueTimeoutMs',
    MAX_INFLIGHT_BODY_BYTES: 'maxInflightBodyBytes',
    MAX_JSON_DEPTH: 'maxJsonDepth',
  },
} as const;

/** A worker's variables; every one but HANDLERS_MODULE is also a `startWorker` setting. */
const worker = {
  schema: {
    ...common.schema,
    ...jobs.schema,
    ...fastPath.schema,
    WORKER_CONCURRENCY: int({ default: 10, min: 1, max: 1000 }),
    HANDLER_TIMEOUT_MS: int({ default: 30_000, min: 1, max: 86_400_000 }),
    LOCK_DURATION_MS: int({ default: 15_000, min: 1000, max: 3_600_000 }),
    STALLED_INTERVAL_MS: int({ default: 15_000, min: 1000, max: 3_600_000 }),
    WORKER_METRICS_PORT: int({ default: 9464, min: 0, max: 65535 }),
    WORKER_METRICS_HOST: text({ default: '127.0.0.1' }),
    IDEMPOTENCY_TTL_SECONDS: int({ default: 604_800, min: 1, max: 31_536_000 }),
    HANDLERS_MODULE: optionalText(),
    HANDLERS_LOAD_TIMEOUT_MS: int({ default: 30_000, min: 100, max: 3_600_000 }),
    SHUTDOWN_GRACE_MS: int({ default: 10_000, min: 0, max: 3_600_000 }),
    ARCHIVE_RETENTION_DAYS: int({ default: 30, min: 1, max: 36_500 }),
  },
  keys: {
    ...common.keys,
    ...jobs.keys,
    ...fastPath.keys,
    WORKER_CONCURRENCY: 'concurrency',
    HANDLER_TIMEOUT_MS: 'handlerTimeoutMs',
    LOCK_DURATION_MS: 'lockDurationMs',
    STALLED_INTERVAL_MS: 'stalledIntervalMs',
    WORKER_METRICS_PORT: 'metricsPort',
    WORKER_METRICS_HOST: 'metricsHost',
    IDEMPOTENCY_TTL_SECONDS: 'idempotencyTtlSeconds',
    HANDLERS_MODULE: 'handlersModule',
    HANDLERS_LOAD_TIMEOUT_MS: 'handlersLoadTimeoutMs',
    SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
    ARCHIVE_RETENTION_DAYS: 'archiveRetentionDays',
  },
} as const;

/** Environment variables of the ingest app, in schema order (the settings of `createIngest`). */
export const INGEST_APP_VARIABLES = Object.freeze(
  Object.keys(ingestApp.schema),
) as readonly (keyof typeof ingestApp.schema)[];
/** Environment variables of a worker, in schema order. */
export const WORKER_VARIABLES = Object.freeze(
  Object.keys(worker.schema),
) as readonly (keyof typeof worker.schema)[];

/** Parses the ingest's environment. Throws {@link ConfigError} naming the first bad variable. */
export function loadIngestConfig(env: Env): IngestConfig {
  const config = parse(
    env,
    {
      ...ingestApp.schema,
      ...httpLimits.schema,
      PORT: int({ default: 3000, ...PORT }),
      HOST: text({ default: '0.0.0.0' }),
      METRICS_PORT: optionalInt(PORT),
      METRICS_HOST: text({ default: '127.0.0.1' }),
    },
    {
      ...ingestApp.keys,
      ...httpLimits.keys,
      PORT: 'port',
      HOST: 'host',
      METRICS_PORT: 'metricsPort',
      METRICS_HOST: 'metricsHost',
    },
  );
  checkIngestApp(config);
  checkHttpLimits(config);
  if (config.metricsPort === config.port) {
    throw new ConfigError('METRICS_PORT', `must differ from PORT (${config.port})`);
  }
  return config;
}

/** Parses the ingest app's part of an environment (no PORT or HOST: it listens nowhere). */
export function loadIngestAppConfig(env: Env): IngestAppConfig {
  const config = parse(env, ingestApp.schema, ingestApp.keys);
  checkIngestApp(config);
  return config;
}

/** What no single variable can check: the body budget must hold one largest body. */
function checkIngestApp(config: IngestAppConfig): void {
  if (config.maxInflightBodyBytes < config.maxBodyBytes) {
    throw new ConfigError(
      'MAX_INFLIGHT_BODY_BYTES',
      `must be at least MAX_BODY_BYTES (${config.maxBodyBytes}), got ${config.maxInflightBodyBytes}`,
    );
  }
}

/**
 * Warnings about a configuration that works but is weak, one line each, for the process to log
 * at start: webhook secrets shorter than {@link SECRET_RECOMMENDED_LENGTH} characters.
 */
export function ingestConfigWarnings(config: Pick<IngestConfig, 'secrets'>): string[] {
  const short = config.secrets
    .map((secret, index) => (secret.length < SECRET_RECOMMENDED_LENGTH ? index + 1 : 0))
    .filter((entry) => entry > 0);
  if (short.length === 0) return [];
  const which = short.length === 1 ? `entry ${short[0]} is` : `entries ${short.join(', ')} are`;
  return [
    `GROQ_WEBHOOK_SECRET ${which} shorter than ${SECRET_RECOMMENDED_LENGTH} characters: use a long random secret (e.g. openssl rand -hex 32)`,
  ];
}

/** Node refuses a headers timeout longer than the request timeout: say so naming the variable. */
function checkHttpLimits(config: HttpLimitsConfig): void {
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    throw new ConfigError(
      'HEADERS_TIMEOUT_MS',
      `must not be more than REQUEST_TIMEOUT_MS (${config.requestTimeoutMs}), got ${config.headersTimeoutMs}`,
    );
  }
}

/** Parses a worker's environment. */
export function loadWorkerConfig(env: Env): WorkerConfig {
  return parse(env, worker.schema, worker.keys);
}

/** Parses the dashboard's environment; refuses to go on without `ADMIN_TOKEN`. */
export function loadDashboardConfig(env: Env): DashboardConfig {
  const config = parse(
    env,
    {
      ...common.schema,
      ...jobs.schema,
      ...httpLimits.schema,
      ADMIN_TOKEN: token({ minLength: 16 }),
      DASHBOARD_PORT: int({ default: 3001, ...PORT }),
      DASHBOARD_HOST: text({ default: '127.0.0.1' }),
    },
    {
      ...common.keys,
      ...jobs.keys,
      ...httpLimits.keys,
      ADMIN_TOKEN: 'adminToken',
      DASHBOARD_PORT: 'port',
      DASHBOARD_HOST: 'host',
    },
  );
  checkHttpLimits(config);
  return config;
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
