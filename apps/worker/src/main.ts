import { createServer, type Server } from 'node:http';
import { loadOrExit, loadWorkerConfig } from '@groq-webhooks/config';
import type { HandlerMap } from '@groq-webhooks/core';
import { createRedis } from '@groq-webhooks/queue';
import { createLogger, createRegistry, flushAndExit } from '@groq-webhooks/telemetry';
import { exampleHandlers } from './example-handlers.js';
import { HandlersModuleError, loadHandlers } from './handlers-module.js';
import { metricsListener } from './metrics.js';
import { createWorker } from './worker.js';

const config = loadOrExit(() => loadWorkerConfig(process.env));
const logger = createLogger({ service: 'worker', level: config.logLevel });

let handlers: HandlerMap = exampleHandlers;
if (config.handlersModule !== undefined) {
  // Said before loading: a module that hangs or crashes while loading is then named in the log.
  logger.info(
    { handlersModule: config.handlersModule, timeoutMs: config.handlersLoadTimeoutMs },
    'Loading handlers module',
  );
  try {
    handlers = await loadHandlers(config.handlersModule, process.cwd(), {
      timeoutMs: config.handlersLoadTimeoutMs,
    });
  } catch (error) {
    if (!(error instanceof HandlersModuleError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

const registry = createRegistry('worker');
const worker = createWorker({
  settings: config,
  connect: (name) => createRedis(config, 'worker', name),
  handlers,
  logger,
  registry,
  name: `groq-worker-${process.pid}`,
});

let server: Server | undefined;
if (config.metricsPort > 0) {
  server = createServer(metricsListener(registry));
  server.once('error', (error) => {
    process.stderr.write(
      `Cannot listen on WORKER_METRICS_PORT ${config.metricsPort} (WORKER_METRICS_HOST ${config.metricsHost}): ${error.message}\n`,
    );
    process.exit(1);
  });
  // Loopback by default: the metrics name the Node version, memory and queue depths.
  server.listen(config.metricsPort, config.metricsHost);
}

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, 'Second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'Shutting down: no new jobs');
  await worker.close(config.shutdownGraceMs);
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  logger.info('Worker stopped');
  // User handler modules may hold their own sockets and timers; they must not keep us alive.
  flushAndExit(logger, 0);
}
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));

await worker.start();
if (!stopping) {
  logger.info(
    {
      queue: config.queueName,
      shards: config.queueShards,
      concurrency: config.concurrency,
      handlers: config.handlersModule ?? 'built-in examples',
      metricsPort: config.metricsPort,
      metricsHost: config.metricsHost,
    },
    'Worker ready',
  );
}
