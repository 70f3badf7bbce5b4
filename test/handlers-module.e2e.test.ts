import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeRedis, createRedis, EventProducer, STOCK_PATH } from '@groq-webhooks/queue';
import {
  startProcess,
  startRedis,
  stopAllProcesses,
  type TestRedis,
  waitFor,
} from '@groq-webhooks/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { ENTRY, ROOT } from './support/paths.js';

// A user's handler module lives in the user's checkout, not inside a workspace package: it must
// still find `@groq-webhooks/core`, as the README's example imports it.
const DIR = join(ROOT, '.local', `handlers-e2e-${process.pid}`);

describe('a user handler module at the repo root', () => {
  let redis: TestRedis | undefined;
  afterAll(async () => {
    await stopAllProcesses();
    await redis?.cleanup();
    rmSync(DIR, { recursive: true, force: true });
  });

  it('imports defineHandlers from @groq-webhooks/core and runs', async () => {
    mkdirSync(DIR, { recursive: true });
    const module = join(DIR, 'handlers.ts');
    writeFileSync(
      module,
      `import { defineHandlers, NonRetryableError } from '@groq-webhooks/core';
export default defineHandlers({
  'resource.created': async (event, ctx) => {
    if (!(NonRetryableError.prototype instanceof Error)) throw new Error('no NonRetryableError');
    ctx.logger.info({ resourceId: event.data.id }, 'user handler ran');
  },
  'resource.updated': async () => {},
  'resource.deleted': async () => {},
});
`,
    );
    redis = await startRedis();
    const worker = startProcess(process.execPath, [ENTRY.worker], {
      cwd: ROOT,
      env: {
        REDIS_URL: redis.url,
        HANDLERS_MODULE: module,
        WORKER_METRICS_PORT: '0',
        QUEUE_SHARDS: '1',
      },
    });
    await worker.waitForOutput('Worker ready', 30_000);
    const client = createRedis({ redisUrl: redis.url, redisClusterNodes: undefined }, 'producer');
    try {
      await waitFor(() => client.status === 'ready');
      const producer = new EventProducer({
        client,
        path: STOCK_PATH,
        settings: {
          queueName: 'groq-events',
          queuePrefix: '{groq}',
          queueShards: 1,
          jobAttempts: 3,
          backoffBaseMs: 100,
        },
      });
      const event = {
        id: 'evt_user_module',
        type: 'resource.created',
        data: { id: 'res_9' },
        created: '2026-11-28T10:00:00Z',
      };
      expect(
        await producer.enqueue({ event, receivedAt: new Date().toISOString(), keyIndex: 0 }, 2000),
      ).toBe('enqueued');
      const line = await waitFor(
        () =>
          worker
            .logLines()
            .find((l) => l.msg === 'user handler ran' && l.eventId === 'evt_user_module'),
        { timeoutMs: 15_000, description: 'the user handler to run' },
      );
      expect(line.resourceId).toBe('res_9');
      await producer.close();
    } finally {
      await closeRedis(client);
    }
  }, 60_000);
});
