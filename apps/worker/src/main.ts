import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { createHistoryService, type HistoryService } from '@groq-webhooks/archive';
import { loadOrExit, loadWorkerConfig } from '@groq-webhooks/config';
import type { HandlerMap } from '@groq-webhooks/core';
import { closeRedis, createRedis, queuePathOrExit } from '@groq-webhooks/queue';
import { createLogger, createRegistry, flushAndExit, startTracing } from '@groq-webhooks/telemetry';
import { exampleHandlers } from './example-handlers.js';
import { HandlersModuleError, loadHandlers } from './handlers-module.js';
import { metricsListener } from './metrics.js';
import { createWorker } from './worker.js';

const config = loadOrExit(() => loadWorkerConfig(process.env));
const logger = createLogger({ service: 'worker', level: config.logLevel });
// Tracing only when the standard OpenTelemetry variables ask for it (otherwise no SDK is loaded),
// started before the handler module loads, so that what it instruments finds the SDK.
const tracing = await startTracing({ env: process.env, service: 'worker', asyncContext: true });

let handlers: HandlerMap = exampleHandlers;
if (config.handlersModule !== undefined) {
  try {
    handlers = await loadHandlers(config.handlersModule, process.cwd());
  } catch (error) {
    if (!(error instanceof HandlersModuleError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

// The queue path is chosen once: the fast one when it can be used, else BullMQ's stock one.
const path = await queuePathOrExit(config, (line) => logger.warn(line));

const registry = createRegistry('worker');
const worker = createWorker({
  settings: config,
  connect: (name) => createRedis(config, 'worker', name),
  path,
  handlers,
  logger,
  registry,
  name: `groq-worker-${process.pid}`,
  tracer: tracing?.tracer,
});

// The event history: this process's archiver drains the shards' history streams into
// PostgreSQL, off the handling path (a database that is down only grows the streams).
const history: HistoryService | undefined =
  config.archiveDatabaseUrl === undefined
    ? undefined
    : createHistoryService({
        databaseUrl: config.archiveDatabaseUrl,
        retentionDays: config.archiveRetentionDays,
        redis: createRedis(config, 'worker', 'groq-webhooks-archiver'),
        settings: config,
        logger,
        consumer: `${hostname()}-${process.pid}`,
        registry,
        closeRedis,
      });

let server: Server | undefined;
if (config.metricsPort > 0) {
  server = createServer(metricsListener(registry));
  server.once('error', (error) => {
    process.stderr.write(
      `Cannot listen on WORKER_METRICS_PORT ${config.metricsPort}: ${error.message}\n`,
    );
    process.exit(1);
  });
  server.listen(config.metricsPort);
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
  await history?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  // The spans still buffered go out before the process does.
  await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, 'tracing flush'));
  logger.info('Worker stopped');
  // User handler modules may hold their own sockets and timers; they must not keep us alive.
  flushAndExit(logger, 0);
}
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));

await worker.start();
if (!stopping) history?.start();
if (!stopping) {
  logger.info(
    {
      queue: config.queueName,
      shards: config.queueShards,
      concurrency: config.concurrency,
      queuePath: path.kind,
      handlers: config.handlersModule ?? 'built-in examples',
      metricsPort: config.metricsPort,
      history: history === undefined ? 'off' : 'on',
      tracing: tracing !== undefined,
    },
    'Worker ready',
  );
}
