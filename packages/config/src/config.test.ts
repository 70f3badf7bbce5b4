import { describe, expect, it } from 'vitest';
import {
  loadCliConfig,
  loadDashboardConfig,
  loadIngestConfig,
  loadWorkerConfig,
} from './config.js';
import { ConfigError } from './fields.js';

function errorOf(load: () => unknown): ConfigError {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('ingest config', () => {
  it('applies the SPEC defaults and freezes the result', () => {
    const config = loadIngestConfig({ GROQ_WEBHOOK_SECRET: 'whsec_abc' });
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
      secrets: ['whsec_abc'],
      port: 3000,
      host: '0.0.0.0',
      toleranceSeconds: 300,
      maxBodyBytes: 1_048_576,
      enqueueTimeoutMs: 2000,
      queueFastPath: 'auto',
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.secrets)).toBe(true);
  });

  it('splits rotated secrets on commas and trims them', () => {
    expect(loadIngestConfig({ GROQ_WEBHOOK_SECRET: ' new , old ' }).secrets).toEqual([
      'new',
      'old',
    ]);
  });

  it('parses cluster nodes', () => {
    const config = loadIngestConfig({
      GROQ_WEBHOOK_SECRET: 's',
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
      { GROQ_WEBHOOK_SECRET: 's', PORT: 'abc' },
      'Invalid configuration: PORT must be a whole number from 1 to 65535, got "abc"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: 's', PORT: '70000' },
      'Invalid configuration: PORT must be a whole number from 1 to 65535, got "70000"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: 's', MAX_BODY_BYTES: '1e6' },
      'Invalid configuration: MAX_BODY_BYTES must be a whole number from 1 to 104857600, got "1e6"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: 's', REDIS_URL: 'http://x' },
      'Invalid configuration: REDIS_URL must use redis:// or rediss://, got "http:"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: 's', REDIS_URL: 'not a url' },
      'Invalid configuration: REDIS_URL must be a URL like redis://host:6379',
    ],
    [
      { GROQ_WEBHOOK_SECRET: 's', REDIS_CLUSTER_NODES: 'a:b' },
      'Invalid configuration: REDIS_CLUSTER_NODES must be host:port pairs separated by commas, got "a:b"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: 's', LOG_LEVEL: 'loud' },
      'Invalid configuration: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [
      { GROQ_WEBHOOK_SECRET: 's', QUEUE_NAME: 'a:b' },
      'Invalid configuration: QUEUE_NAME must be letters, digits, _ . - (1-100), got "a:b"',
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
      idempotencyTtlSeconds: 604_800,
      handlersModule: undefined,
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
