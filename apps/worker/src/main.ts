#!/usr/bin/env node
import { loadOrExit, loadWorkerConfig, whenSupervisorGone } from '@groq-webhooks/config';
import type { HandlerMap } from '@groq-webhooks/core';
import { queuePathOrExit } from '@groq-webhooks/queue';
import { createLogger, flushAndExit, startTracing } from '@groq-webhooks/telemetry';
import { exampleHandlers } from './example-handlers.js';
import { HandlersModuleError, loadHandlers } from './handlers-module.js';
import { MetricsPortError, type OpenedWorker, openWorker } from './start-worker.js';

const config = loadOrExit(() => loadWorkerConfig(process.env));
const logger = createLogger({ service: 'worker', level: config.logLevel });
// Tracing only when the standard OpenTelemetry variables ask for it (otherwise no SDK is loaded),
// started before the handler module loads, so that what it instruments finds the SDK.
const tracing = await startTracing({ env: process.env, service: 'worker', asyncContext: true });

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

// The queue path is chosen once: the fast one when it can be used, else BullMQ's stock one.
const path = await queuePathOrExit(config, (line) => logger.warn(line));

// The same wiring as startWorker(), plus signals.
let worker: OpenedWorker;
try {
  worker = await openWorker({ config, handlers, logger, path, tracing });
} catch (error) {
  if (!(error instanceof MetricsPortError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, 'Second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal, graceMs: config.shutdownGraceMs }, 'Shutting down: no new jobs');
  await worker.close();
  logger.info('Worker stopped');
  // User handler modules may hold their own sockets and timers; they must not keep us alive.
  flushAndExit(logger, 0);
}
process.on('SIGTERM', (signal) => void shutdown(signal));
process.on('SIGINT', (signal) => void shutdown(signal));
// Started by `pnpm start`: stops with its runner, however the runner ended.
whenSupervisorGone(process.env, () => void shutdown('SIGTERM'));

await worker.ready;
worker.logReady(config.handlersModule ?? 'built-in examples');
