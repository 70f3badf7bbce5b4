import { describe, expect, it } from 'vitest';
import { errorOf } from './__fixtures__/config-error.js';
import {
  ingestConfigWarnings,
  loadCliConfig,
  loadDashboardConfig,
  loadIngestConfig,
  loadWorkerConfig,
} from './config.js';
import { httpServerOptions } from './server-options.js';

/** A secret long enough to draw no warning. */
const S = 'whsec_0123456789abcdef0123456789abcdef';

describe('ingest config', () => {
  it('applies the SPEC defaults and freezes the result', () => {
    const config = loadIngestConfig({ GROQ_WEBHOOK_SECRET: S });
    expect(config).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      redisClusterNodes: undefined,
      queueName: 'groq-events',
      queuePrefix: '{groq}',
      queueShards: 1,
      logLevel: 'info',
      archiveDatabaseUrl: undefined,
      jobAttempts: 8,
      backoffBaseMs: 1000,
      completedRetentionSeconds: 3600,
      completedRetentionCount: undefined,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      maxConnections: 1024,
      secrets: [S],
      port: 3000,
      host: '0.0.0.0',
      toleranceSeconds: 300,
      maxBodyBytes: 1_048_576,
      enqueueTimeoutMs: 2000,
      maxInflightBodyBytes: 67_108_864,
      maxJsonDepth: 64,
      metricsPort: undefined,
      metricsHost: '127.0.0.1',
      queueFastPath: 'auto',
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.secrets)).toBe(true);
  });

  it('splits rotated secrets on commas and trims them', () => {
    expect(
      loadIngestConfig({ GROQ_WEBHOOK_SECRET: ' new-secret-0123456 , old-secret-0123456 ' })
        .secrets,
    ).toEqual(['new-secret-0123456', 'old-secret-0123456']);
  });

  it('refuses a secret shorter than 16 characters in one line that does not echo it', () => {
    const error = errorOf(() => loadIngestConfig({ GROQ_WEBHOOK_SECRET: `${S},short-secret` }));
    expect(error.message).toBe(
      'Invalid configuration: GROQ_WEBHOOK_SECRET entry 2 is shorter than 16 characters',
    );
    expect(error.message).not.toContain('short-secret');
    expect(errorOf(() => loadIngestConfig({ GROQ_WEBHOOK_SECRET: 'a' })).variable).toBe(
      'GROQ_WEBHOOK_SECRET',
    );
  });

  it('warns in one line about secrets shorter than 32 characters, naming no secret', () => {
    expect(ingestConfigWarnings(loadIngestConfig({ GROQ_WEBHOOK_SECRET: S }))).toEqual([]);
    const warnings = ingestConfigWarnings(
      loadIngestConfig({ GROQ_WEBHOOK_SECRET: `sixteen-chars-ok,${S},another-short-one` }),
    );
    expect(warnings).toEqual([
      'GROQ_WEBHOOK_SECRET entries 1, 3 are shorter than 32 characters: use a long random secret (e.g. openssl rand -hex 32)',
    ]);
    expect(warnings[0]).not.toContain('sixteen');
  });

  it('reads the limits, metrics port and retention settings', () => {
    const config = loadIngestConfig({
      GROQ_WEBHOOK_SECRET: S,
      HEADERS_TIMEOUT_MS: '2000',
      REQUEST_TIMEOUT_MS: '5000',
      MAX_CONNECTIONS: '50',
      MAX_INFLIGHT_BODY_BYTES: '2097152',
      MAX_JSON_DEPTH: '10',
      METRICS_PORT: '9100',
      METRICS_HOST: '0.0.0.0',
      COMPLETED_RETENTION_SECONDS: '60',
      COMPLETED_RETENTION_COUNT: '0',
    });
    expect(config).toMatchObject({
      headersTimeoutMs: 2000,
      requestTimeoutMs: 5000,
      maxConnections: 50,
      maxInflightBodyBytes: 2_097_152,
      maxJsonDepth: 10,
      metricsPort: 9100,
      metricsHost: '0.0.0.0',
      completedRetentionSeconds: 60,
      completedRetentionCount: 0,
    });
    expect(httpServerOptions(config)).toEqual({
      headersTimeout: 2000,
      requestTimeout: 5000,
      connectionsCheckingInterval: 1000,
    });
  });

  it('parses cluster nodes', () => {
    const config = loadIngestConfig({
      GROQ_WEBHOOK_SECRET: S,
      REDIS_CLUSTER_NODES: '127.0.0.1:7000, [::1]:7001',
    });
    expect(config.redisClusterNodes).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: '::1', port: 7001 },
    ]);
  });

  it.each<[Record<string, string>, string]>([
    [
      {},
      'Invalid configuration: GROQ_WEBHOOK_SECRET is required (a secret, or several separated by commas)',
    ],
    [
      { GROQ_WEBHOOK_SECRET: ' , ' },
      'Invalid configuration: GROQ_WEBHOOK_SECRET is required (a secret, or several separated by commas)',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, PORT: 'abc' },
      'Invalid configuration: PORT must be a whole number from 1 to 65535, got "abc"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, PORT: '70000' },
      'Invalid configuration: PORT must be a whole number from 1 to 65535, got "70000"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, MAX_BODY_BYTES: '1e6' },
      'Invalid configuration: MAX_BODY_BYTES must be a whole number from 1 to 104857600, got "1e6"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, REDIS_URL: 'http://x' },
      'Invalid configuration: REDIS_URL must use redis:// or rediss://, got "http:"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, REDIS_URL: 'not a url' },
      'Invalid configuration: REDIS_URL must be a URL like redis://host:6379',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, REDIS_CLUSTER_NODES: 'a:b' },
      'Invalid configuration: REDIS_CLUSTER_NODES must be host:port pairs separated by commas, got "a:b"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, LOG_LEVEL: 'loud' },
      'Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, QUEUE_NAME: 'a:b' },
      'Invalid configuration: QUEUE_NAME must be letters, digits, _ . - (1-100), got "a:b"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, HEADERS_TIMEOUT_MS: '40000' },
      'Invalid configuration: HEADERS_TIMEOUT_MS must not be more than REQUEST_TIMEOUT_MS (30000), got 40000',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, MAX_INFLIGHT_BODY_BYTES: '1000' },
      'Invalid configuration: MAX_INFLIGHT_BODY_BYTES must be at least MAX_BODY_BYTES (1048576), got 1000',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, MAX_JSON_DEPTH: '5000' },
      'Invalid configuration: MAX_JSON_DEPTH must be a whole number from 2 to 1000, got "5000"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, METRICS_PORT: '3000' },
      'Invalid configuration: METRICS_PORT must differ from PORT (3000)',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, METRICS_PORT: 'x' },
      'Invalid configuration: METRICS_PORT must be a whole number from 1 to 65535, got "x"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: S, COMPLETED_RETENTION_COUNT: '-1' },
      'Invalid configuration: COMPLETED_RETENTION_COUNT must be a whole number from 0 to 10000000, got "-1"',
    ],
  ])('%j → one line naming the variable', (env, message) => {
    const error = errorOf(() => loadIngestConfig(env));
    expect(error.message).toBe(message);
    expect(error.message).not.toContain('\n');
  });
});

describe('worker config', () => {
  it('applies the SPEC defaults', () => {
    expect(loadWorkerConfig({})).toMatchObject({
      concurrency: 10,
      jobAttempts: 8,
      backoffBaseMs: 1000,
      handlerTimeoutMs: 30_000,
      lockDurationMs: 15_000,
      stalledIntervalMs: 15_000,
      metricsPort: 9464,
      metricsHost: '127.0.0.1',
      idempotencyTtlSeconds: 604_800,
      handlersModule: undefined,
      handlersLoadTimeoutMs: 30_000,
      queueFastPath: 'auto',
      archiveDatabaseUrl: undefined,
      archiveRetentionDays: 30,
    });
  });

  it('takes QUEUE_FAST_PATH as auto, on or off, and refuses anything else in one line', () => {
    expect(loadWorkerConfig({ QUEUE_FAST_PATH: 'off' }).queueFastPath).toBe('off');
    expect(loadWorkerConfig({ QUEUE_FAST_PATH: 'on' }).queueFastPath).toBe('on');
    expect(errorOf(() => loadWorkerConfig({ QUEUE_FAST_PATH: 'yes' })).message).toBe(
      'Invalid configuration: QUEUE_FAST_PATH must be one of auto, on, off, got "yes"',
    );
  });

  it('takes a PostgreSQL URL for the history and refuses others without echoing them', () => {
    expect(
      loadWorkerConfig({ ARCHIVE_DATABASE_URL: 'postgres://u:p@db:5432/history' })
        .archiveDatabaseUrl,
    ).toBe('postgres://u:p@db:5432/history');
    const error = errorOf(() =>
      loadWorkerConfig({ ARCHIVE_DATABASE_URL: 'mysql://u:secretpw@db/history' }),
    );
    expect(error.variable).toBe('ARCHIVE_DATABASE_URL');
    expect(error.message).not.toContain('secretpw');
    expect(errorOf(() => loadWorkerConfig({ ARCHIVE_RETENTION_DAYS: '0' })).variable).toBe(
      'ARCHIVE_RETENTION_DAYS',
    );
  });

  it('refuses a zero concurrency', () => {
    expect(errorOf(() => loadWorkerConfig({ WORKER_CONCURRENCY: '0' })).variable).toBe(
      'WORKER_CONCURRENCY',
    );
  });

  it('allows 0 to disable the metrics port', () => {
    expect(loadWorkerConfig({ WORKER_METRICS_PORT: '0' }).metricsPort).toBe(0);
  });
});

describe('dashboard config', () => {
  it('refuses to start without ADMIN_TOKEN', () => {
    expect(errorOf(() => loadDashboardConfig({})).message).toBe(
      'Invalid configuration: ADMIN_TOKEN is required',
    );
  });

  it('refuses a short token without echoing it', () => {
    const error = errorOf(() => loadDashboardConfig({ ADMIN_TOKEN: 'hunter2' }));
    expect(error.message).toBe(
      'Invalid configuration: ADMIN_TOKEN must be at least 16 characters long',
    );
    expect(error.message).not.toContain('hunter2');
  });

  it('bounds slow clients as the ingest does', () => {
    expect(loadDashboardConfig({ ADMIN_TOKEN: 'a'.repeat(16) })).toMatchObject({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      maxConnections: 1024,
    });
    expect(
      errorOf(() =>
        loadDashboardConfig({ ADMIN_TOKEN: 'a'.repeat(16), REQUEST_TIMEOUT_MS: '1000' }),
      ).variable,
    ).toBe('HEADERS_TIMEOUT_MS');
  });

  it('keeps a token with commas whole', () => {
    expect(loadDashboardConfig({ ADMIN_TOKEN: 'a,b,c,d,e,f,g,h,i,j' }).adminToken).toBe(
      'a,b,c,d,e,f,g,h,i,j',
    );
  });
});

describe('cli config', () => {
  it('does not need a secret', () => {
    expect(loadCliConfig({}).secrets).toEqual([]);
  });
});
