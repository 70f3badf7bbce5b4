// Compile-time tests: `pnpm test` type-checks this file, so every @ts-expect-error below must
// really be an error, and every other line must compile.
import { defineHandlers } from '@groq-webhooks/core';
import { startWorker } from './start-worker.js';

const handlers = defineHandlers({
  'resource.created': async (event) => {
    const attributes: Record<string, unknown> | undefined = event.data.attributes;
    void attributes;
  },
  'resource.updated': async () => {},
  'resource.deleted': async () => {},
});

export async function typed(): Promise<void> {
  const worker = await startWorker({
    handlers,
    redisUrl: process.env.REDIS_URL,
    workerConcurrency: 20,
    handlerTimeoutMs: 5000,
    workerMetricsPort: 0,
    logLevel: 'warn',
    redisClusterNodes: [{ host: '127.0.0.1', port: 7000 }],
  });
  await worker.close(1000);
  void worker.registry.metrics();

  // A plain object works as well as defineHandlers.
  await startWorker({
    handlers: {
      'resource.created': async () => {},
      'resource.updated': async () => {},
      'resource.deleted': () => {},
    },
  });

  await startWorker({
    // @ts-expect-error a handler map missing a known type does not compile
    handlers: {
      'resource.created': async () => {},
      'resource.updated': async () => {},
    },
  });

  // @ts-expect-error handlers are required
  await startWorker({ workerConcurrency: 2 });

  // @ts-expect-error settings are typed: a number is a number
  await startWorker({ handlers, workerConcurrency: '20' });

  // @ts-expect-error a misspelt setting is not a setting
  await startWorker({ handlers, workerConcurency: 20 });

  // @ts-expect-error HANDLERS_MODULE is the bin's: startWorker takes the handlers themselves
  await startWorker({ handlers, handlersModule: './handlers.ts' });

  // @ts-expect-error log levels are pino's
  await startWorker({ handlers, logLevel: 'loud' });
}
