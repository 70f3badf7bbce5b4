import { describe, expect, it } from 'vitest';
import { errorOf } from './__fixtures__/config-error.js';
import { loadIngestAppConfig, loadWorkerConfig } from './config.js';
import { loadIngestSettings, loadWorkerSettings } from './settings.js';

describe('settings given in code', () => {
  it('parse like their variables: the same object as from the environment', () => {
    const fromSettings = loadWorkerSettings(
      {
        redisUrl: 'redis://10.0.0.1:6380',
        workerConcurrency: 25,
        handlerTimeoutMs: 5000,
        workerMetricsPort: 0,
        queueShards: 3,
        logLevel: 'warn',
        redisClusterNodes: [
          { host: '127.0.0.1', port: 7000 },
          { host: '::1', port: 7001 },
        ],
      },
      {},
    );
    const fromEnv = loadWorkerConfig({
      REDIS_URL: 'redis://10.0.0.1:6380',
      WORKER_CONCURRENCY: '25',
      HANDLER_TIMEOUT_MS: '5000',
      WORKER_METRICS_PORT: '0',
      QUEUE_SHARDS: '3',
      LOG_LEVEL: 'warn',
      REDIS_CLUSTER_NODES: '127.0.0.1:7000,[::1]:7001',
    });
    expect(fromSettings).toEqual(fromEnv);
    expect(fromSettings.concurrency).toBe(25);
    expect(Object.isFrozen(fromSettings)).toBe(true);
  });

  it('take what is not given from the environment, and win over it', () => {
    const config = loadIngestSettings(
      {
        secrets: ['new-secret-0123456789abcdef', 'old-secret-0123456789abcdef'],
        maxBodyBytes: 2048,
      },
      {
        GROQ_WEBHOOK_SECRET: 'from-env-0123456789abcdef',
        MAX_BODY_BYTES: '10',
        WEBHOOK_TOLERANCE_SECONDS: '60',
      },
    );
    expect(config.secrets).toEqual(['new-secret-0123456789abcdef', 'old-secret-0123456789abcdef']);
    expect(config.maxBodyBytes).toBe(2048);
    expect(config.toleranceSeconds).toBe(60);
    expect(config).toEqual(
      loadIngestAppConfig({
        GROQ_WEBHOOK_SECRET: 'new-secret-0123456789abcdef,old-secret-0123456789abcdef',
        MAX_BODY_BYTES: '2048',
        WEBHOOK_TOLERANCE_SECONDS: '60',
      }),
    );
  });

  it('treat an undefined setting as not given', () => {
    expect(
      loadIngestSettings(
        { secrets: undefined },
        { GROQ_WEBHOOK_SECRET: 'env-secret-0123456789abcdef' },
      ).secrets,
    ).toEqual(['env-secret-0123456789abcdef']);
  });

  it.each<[Record<string, unknown>, string]>([
    [
      { workerConcurrency: 0 },
      'Invalid configuration: workerConcurrency (WORKER_CONCURRENCY) must be a whole number from 1 to 1000, got "0"',
    ],
    [
      { handlerTimeoutMs: 2.5 },
      'Invalid configuration: handlerTimeoutMs (HANDLER_TIMEOUT_MS) must be a whole number from 1 to 86400000, got "2.5"',
    ],
    [
      { redisUrl: 'http://x' },
      'Invalid configuration: redisUrl (REDIS_URL) must use redis:// or rediss://, got "http:"',
    ],
    [
      { logLevel: 'loud' },
      'Invalid configuration: logLevel (LOG_LEVEL) must be one of fatal, error, warn, info, debug, trace, silent, got "loud"',
    ],
    [{ workerConcurency: 5 }, 'Invalid configuration: workerConcurency is not a known setting'],
    [{ handlersModule: './x.ts' }, 'Invalid configuration: handlersModule is not a known setting'],
    [
      { queueShards: { n: 2 } },
      'Invalid configuration: queueShards (QUEUE_SHARDS) must be a string or a number, got object',
    ],
  ])('worker %j → one line naming the setting and its variable', (settings, message) => {
    const error = errorOf(() => loadWorkerSettings(settings, {}));
    expect(error.message).toBe(message);
  });

  it('name only the variable when the bad value came from the environment', () => {
    expect(errorOf(() => loadWorkerSettings({}, { WORKER_CONCURRENCY: '0' })).message).toBe(
      'Invalid configuration: WORKER_CONCURRENCY must be a whole number from 1 to 1000, got "0"',
    );
  });

  it('refuse the ingest without a secret anywhere, and never echo a secret', () => {
    expect(errorOf(() => loadIngestSettings({}, {})).message).toBe(
      'Invalid configuration: GROQ_WEBHOOK_SECRET is required (a secret, or several separated by commas)',
    );
    expect(errorOf(() => loadIngestSettings({ secrets: [] }, {})).message).toBe(
      'Invalid configuration: secrets (GROQ_WEBHOOK_SECRET) is required (a secret, or several separated by commas)',
    );
    const comma = errorOf(() =>
      loadIngestSettings({ secrets: ['ok-secret-0123456789abcdef', 'hunter,2'] }, {}),
    );
    expect(comma.message).toBe(
      'Invalid configuration: secrets (GROQ_WEBHOOK_SECRET) entry 2 contains a comma',
    );
    expect(comma.message).not.toContain('hunter');
  });

  it('do not take PORT or HOST for the ingest app, which listens nowhere', () => {
    expect(
      errorOf(() =>
        loadIngestSettings({ port: 3000 } as never, {
          GROQ_WEBHOOK_SECRET: 'env-secret-0123456789abcdef',
        }),
      ).message,
    ).toBe('Invalid configuration: port is not a known setting');
    // A PORT the app does not use cannot stop it either.
    const secret = 'env-secret-0123456789abcdef';
    expect(loadIngestSettings({}, { GROQ_WEBHOOK_SECRET: secret, PORT: 'abc' }).secrets).toEqual([
      secret,
    ]);
  });
});
